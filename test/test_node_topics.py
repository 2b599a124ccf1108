"""The node in one process with real rclpy: every output's frame ids, stamps, encodings, sizes and QoS,
the reset service, compressed input and the reset on time going backwards (ground-truth backend)."""

from __future__ import annotations

import numpy as np
import pytest
from gt_backend import GroundTruthModel
from node_fixtures import CAMERA_FRAME, NAMESPACE, NodeRig
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
from ros_harness import RosHarness
from std_srvs.srv import Trigger

from fin3r_ros.conversions import cloud_to_arrays, depth_image_to_array, stamp_to_seconds

STAMPS = (100.0, 100.1, 100.2)


@pytest.fixture
def ros():
    with RosHarness() as harness:
        yield harness


@pytest.fixture(scope="module")
def gt_model(seven_scenes):
    return GroundTruthModel.from_fixture(seven_scenes)


def _send_frames(rig: NodeRig, data, indices, stamps, **kwargs) -> None:
    for i, stamp in zip(indices, stamps, strict=True):
        rig.send(data["rgb"][i], stamp, k=data["K"], **kwargs)


def test_outputs_have_frames_stamps_encodings_sizes(ros, seven_scenes, gt_model) -> None:
    rig = NodeRig(ros, gt_model, diagnostics_rate_hz=20.0)
    _send_frames(rig, seven_scenes, [0, 10, 20], STAMPS)
    got = rig.got
    assert ros.spin_until(lambda: len(got["/tf"]) == 3 and len(got["path"]) >= 1 and got["map"], timeout=5.0)
    for topic in ("depth", "depth/camera_info", "confidence", "points", "pose"):
        assert [stamp_to_seconds(m.header.stamp) for m in got[topic]] == list(STAMPS), topic
    for topic in ("depth", "depth/camera_info", "confidence"):
        assert {m.header.frame_id for m in got[topic]} == {CAMERA_FRAME}, topic
    for topic in ("points", "pose", "map", "path"):
        assert {m.header.frame_id for m in got[topic]} == {"map"}, topic

    depth, conf, info = got["depth"][-1], got["confidence"][-1], got["depth/camera_info"][-1]
    assert (depth.encoding, depth.height, depth.width) == ("32FC1", 480, 640)
    assert (conf.encoding, conf.height, conf.width) == ("32FC1", 480, 640)
    assert (info.height, info.width) == (480, 640)
    np.testing.assert_allclose(np.reshape(info.k, (3, 3)), seven_scenes["K"])
    truth = seven_scenes["depth_mm"][20] / 1000.0
    values = depth_image_to_array(depth)
    assert np.array_equal(np.isnan(values), seven_scenes["depth_mm"][20] == 0), "invalid depth must be NaN"
    np.testing.assert_allclose(values[np.isfinite(values)], truth[truth > 0], atol=1e-6)

    cloud = cloud_to_arrays(got["points"][-1])
    assert cloud["points"].shape[1] == 3 and len(cloud["points"]) > 100_000 and cloud["rgb"].dtype == np.uint8
    assert len(got["path"][-1].poses) == 3
    transforms = [t for m in got["/tf"] for t in m.transforms]
    assert [(t.header.frame_id, t.child_frame_id) for t in transforms] == [("map", CAMERA_FRAME)] * 3
    assert [stamp_to_seconds(t.header.stamp) for t in transforms] == list(STAMPS)

    expected_qos = {
        "depth": (ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE),
        "points": (ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE),
        "map": (ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL),
        "path": (ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL),
    }
    for topic, (reliability, durability) in expected_qos.items():
        (info_,) = rig.recorder.get_publishers_info_by_topic(f"{NAMESPACE}/{topic}")
        assert (info_.qos_profile.reliability, info_.qos_profile.durability) == (reliability, durability), topic
    (image_sub,) = rig.recorder.get_subscriptions_info_by_topic(f"{NAMESPACE}/image")
    assert image_sub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT

    def published_status():
        for array in got["/diagnostics"]:
            values = {kv.key: kv.value for s in array.status for kv in s.values}
            if values.get("frames published") == "3":
                return values
        return None

    assert ros.spin_until(lambda: published_status() is not None, timeout=5.0)
    values = published_status()
    assert values["frames dropped"] == "0" and values["errors"] == "0" and float(values["model p50 (ms)"]) > 0


def test_reset_service_clears_map_and_path(ros, seven_scenes, gt_model) -> None:
    rig = NodeRig(ros, gt_model)
    _send_frames(rig, seven_scenes, [0, 10], STAMPS[:2])
    assert rig.node.session.num_keyframes >= 1
    client = rig.recorder.create_client(Trigger, f"{NAMESPACE}/reconstruct_node/reset")
    assert client.wait_for_service(timeout_sec=5.0)
    future = client.call_async(Trigger.Request())
    assert ros.spin_until(future.done, timeout=5.0)
    assert future.result().success
    assert ros.spin_until(lambda: len(rig.got["path"][-1].poses) == 0, timeout=5.0)
    assert ros.spin_until(lambda: rig.got["map"][-1].width == 0, timeout=5.0)
    assert rig.node.session.num_keyframes == 0

    rig.send(seven_scenes["rgb"][20], STAMPS[2], k=seven_scenes["K"])
    assert ros.spin_until(lambda: len(rig.got["path"][-1].poses) == 1, timeout=5.0)
    np.testing.assert_allclose(_position(rig.got["pose"][-1]), 0.0, atol=1e-9)  # the new world starts here


def _position(pose) -> np.ndarray:
    p = pose.pose.position
    return np.array([p.x, p.y, p.z])


def test_compressed_input(ros, seven_scenes, gt_model) -> None:
    rig = NodeRig(ros, gt_model, image_transport="compressed")
    _send_frames(rig, seven_scenes, [0, 5], STAMPS[:2], compressed=True)  # PNG: lossless, so GT finds the frames
    assert [m.encoding for m in rig.got["depth"]] == ["32FC1", "32FC1"]
    assert rig.errors() == 0


def test_time_going_backwards_resets(ros, seven_scenes, gt_model) -> None:
    rig = NodeRig(ros, gt_model)
    _send_frames(rig, seven_scenes, [0, 10, 20], STAMPS)
    rig.send(seven_scenes["rgb"][30], 50.0, k=seven_scenes["K"])  # a looping bag starts again
    assert rig.node.stats.resets == 1 and rig.errors() == 0
    assert ros.spin_until(lambda: len(rig.got["path"][-1].poses) == 1, timeout=5.0)
    np.testing.assert_allclose(_position(rig.got["pose"][-1]), 0.0, atol=1e-9)
    rig.send(seven_scenes["rgb"][31], 50.1, k=seven_scenes["K"])
    assert ros.spin_until(lambda: len(rig.got["path"][-1].poses) == 2, timeout=5.0)
