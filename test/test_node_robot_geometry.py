"""The robot's own geometry through the real node on 7-Scenes ground truth: metric scale from noisy odometry TF
or from a depth topic (the backend's unit is unknown per session), too little baseline (said, model units kept),
and tf_mode map_to_odom with a drifting odometry tree (composition gives the ground-truth camera pose)."""

from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from gt_backend import GroundTruthModel, GroundTruthStreamingModel
from node_fixtures import CAMERA_FRAME, NAMESPACE, SENSOR_QOS, NodeRig, header
from ros_harness import RosHarness
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage
from transforms3d.euler import euler2mat

from fin3r_lib.data.tf_buffer import TfError
from fin3r_lib.geometry import rigid_inverse
from fin3r_ros.conversions import (
    array_to_image,
    camera_info_to_model,
    cloud_to_arrays,
    depth_image_to_array,
    model_to_camera_info,
    pose_to_matrix,
    rgb_to_image,
)
from fin3r_ros.conversions.transform import matrix_to_transform, transform_to_matrix
from fin3r_ros.rectify import Rectifier
from fin3r_ros.tf_modes import TF_STATIC_QOS
from fin3r_ros.tf_publisher import MAP_FROM_OPTICAL_WORLD, TF_QOS, nearest_rigid

FPS = 10.0


@pytest.fixture
def ros():
    with RosHarness() as harness:
        yield harness


def _pose(yaw: float, xyz) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = euler2mat(0.1 * yaw, -0.05 * yaw, yaw)
    m[:3, 3] = xyz
    return m


def _stamp(t: float) -> Time:
    ns = round(t * 1e9)
    return Time(sec=ns // 10**9, nanosec=ns % 10**9)


class Robot:
    """The robot's TF tree: odom -> base_link (per stamp) and base_link -> camera (static)."""

    BASE_FROM_CAM = _pose(0.2, [0.1, 0.0, 0.3])

    def __init__(self, ros: RosHarness, rig: NodeRig) -> None:
        self.ros, self.rig = ros, rig
        node = ros.node("robot")
        self.tf = node.create_publisher(TFMessage, "/tf", TF_QOS)
        static = node.create_publisher(TFMessage, "/tf_static", TF_STATIC_QOS)
        msg = matrix_to_transform(self.BASE_FROM_CAM, Header(frame_id="base_link"), CAMERA_FRAME)
        static.publish(TFMessage(transforms=[msg]))
        assert ros.spin_until(lambda: node.count_subscribers("/tf") > 0, timeout=10.0)

    def publish(self, t: float, odom_from_cam: np.ndarray) -> None:
        """Publish odom <- base_link at `t` for the camera pose `odom_from_cam`."""
        odom_from_base = odom_from_cam @ rigid_inverse(self.BASE_FROM_CAM)
        tr = matrix_to_transform(odom_from_base, Header(frame_id="odom", stamp=_stamp(t)), "base_link")
        self.tf.publish(TFMessage(transforms=[tr]))

    def send(self, t: float, odom_from_cam: np.ndarray) -> None:
        """`publish`, then wait until the node knows that transform."""
        self.publish(t, odom_from_cam)

        def known() -> bool:
            try:
                self.rig.node.inputs.tf.lookup("odom", CAMERA_FRAME, round(t * 1e9), wait_s=0.0)
            except TfError:
                return False
            return True

        assert self.ros.spin_until(known, timeout=5.0), "the node never heard the odometry"


def _truth(data: dict[str, np.ndarray]) -> np.ndarray:
    """Ground-truth camera poses in the node's map frame (world = frame 0's camera, z up)."""
    rigid = np.stack([nearest_rigid(p) for p in data["poses"]])
    return np.stack([MAP_FROM_OPTICAL_WORLD @ rigid_inverse(rigid[0]) @ p for p in rigid])


def _diagnostics(rig: NodeRig) -> dict[str, str]:
    assert rig.ros.spin_until(lambda: len(rig.got["/diagnostics"]) > 0, timeout=5.0)
    count = len(rig.got["/diagnostics"])
    assert rig.ros.spin_until(lambda: len(rig.got["/diagnostics"]) > count, timeout=5.0)  # one after the frames
    return {kv.key: kv.value for kv in rig.got["/diagnostics"][-1].status[0].values}


def _map_scale(rig: NodeRig, data: dict[str, np.ndarray], truth: np.ndarray, i: int) -> float:
    """Median ratio of map depth to ground-truth depth over map points seen by frame `i`'s camera (1.0 = metric)."""
    points = cloud_to_arrays(rig.got["map"][-1])["points"].astype(np.float64)
    cam = (points - truth[i][:3, 3]) @ truth[i][:3, :3]
    k = data["K"]
    uv = cam[:, :2] / cam[:, 2:] * np.diag(k)[:2] + k[:2, 2]
    inside = (cam[:, 2] > 0) & (uv[:, 0] > 0) & (uv[:, 0] < 639) & (uv[:, 1] > 0) & (uv[:, 1] < 479)
    px = np.round(uv[inside]).astype(int)
    seen = data["depth_mm"][i][px[:, 1], px[:, 0]] / 1000.0
    ok = seen > 0
    assert ok.sum() > 5000
    return float(np.median(cam[inside, 2][ok] / seen[ok]))


def _unknown_scale_model(data: dict[str, np.ndarray]) -> GroundTruthModel:
    rigid = np.stack([nearest_rigid(p) for p in data["poses"]])
    return GroundTruthModel(data["rgb"], data["depth_mm"], rigid, data["K"], scale_range=(2.0, 4.0), seed=7)


@pytest.mark.slow
def test_odometry_scale_makes_poses_and_map_metric(ros, seven_scenes) -> None:
    truth = _truth(seven_scenes)
    model = _unknown_scale_model(seven_scenes)
    params = {"scale_source": "odometry", "scale_min_baseline_m": 0.1, "keyframe_min_flow_px": 0.0, "tf_mode": "none"}
    rig = NodeRig(ros, model, context_size=3, voxel_size=0.01, **params)
    robot = Robot(ros, rig)
    rng = np.random.default_rng(0)
    frames = list(range(0, 48, 3))
    for n, i in enumerate(frames):
        odom = np.linalg.inv(MAP_FROM_OPTICAL_WORLD) @ truth[i]  # odometry = truth in optical axes, 1 mm noise
        odom[:3, 3] += rng.normal(0.0, 0.001, 3)
        robot.send(1.0 + n / FPS, odom)
        rig.send(seven_scenes["rgb"][i], 1.0 + n / FPS, k=seven_scenes["K"])
    assert rig.errors() == 0
    last = frames[-1]
    position = pose_to_matrix(rig.got["pose"][-1])[:3, 3]
    assert np.linalg.norm(position) / np.linalg.norm(truth[last][:3, 3]) == pytest.approx(1.0, abs=0.01)
    assert np.linalg.norm(position - truth[last][:3, 3]) <= 0.01 * np.linalg.norm(truth[last][:3, 3])
    path = rig.got["path"][-1].poses
    assert len(path) == len(frames)  # every pose of the path, the early ones rescaled, is metric
    for n, pose in enumerate(path[-5:], start=len(frames) - 5):
        expected = truth[frames[n]][:3, 3]
        got = pose_to_matrix(pose)[:3, 3]
        assert np.linalg.norm(got - expected) <= 0.01 * max(np.linalg.norm(expected), 0.05)
    assert _map_scale(rig, seven_scenes, truth, last) == pytest.approx(1.0, abs=0.01)
    depth = depth_image_to_array(rig.got["depth"][-1])
    valid = seven_scenes["depth_mm"][last] > 0
    ratio = np.median(depth[valid] / (seven_scenes["depth_mm"][last][valid] / 1000.0))
    assert ratio == pytest.approx(1.0, abs=0.01)
    diag = _diagnostics(rig)
    assert diag["scale source"] == "odometry" and diag["scale (m per model unit)"] != "unknown"
    assert float(diag["scale spread"]) < 0.05 and diag["scale status"].startswith("odometry scale")


@pytest.mark.slow
def test_too_little_baseline_is_said_and_output_stays_in_model_units(ros, seven_scenes) -> None:
    truth = _truth(seven_scenes)
    model = _unknown_scale_model(seven_scenes)
    rig = NodeRig(ros, model, context_size=3, scale_source="odometry", keyframe_min_flow_px=0.0, tf_mode="none")
    robot = Robot(ros, rig)
    ratios = []
    for n, i in enumerate(range(4)):  # 12 mm of motion; the default minimum baseline is 0.3 m
        robot.send(2.0 + n / FPS, np.linalg.inv(MAP_FROM_OPTICAL_WORLD) @ truth[i])
        rig.send(seven_scenes["rgb"][i], 2.0 + n / FPS, k=seven_scenes["K"])
        depth = depth_image_to_array(rig.got["depth"][-1])
        valid = seven_scenes["depth_mm"][i] > 0
        ratios.append(np.median(depth[valid] / (seven_scenes["depth_mm"][i][valid] / 1000.0)))
    assert rig.errors() == 0
    assert min(ratios) >= 1.9  # model units: the session's (unknown, 2..4) scale, not metres
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-4)  # and the same unit throughout
    diag = _diagnostics(rig)
    assert diag["scale (m per model unit)"] == "unknown"
    assert "too little baseline" in diag["scale status"] and "model units" in diag["scale status"]


@pytest.mark.slow
def test_depth_topic_scale_makes_output_metric(ros, seven_scenes) -> None:
    truth = _truth(seven_scenes)
    model = _unknown_scale_model(seven_scenes)
    rig = NodeRig(ros, model, context_size=3, voxel_size=0.01, scale_source="depth", keyframe_min_flow_px=0.0)
    depth_pub = ros.node("depth_camera", namespace=NAMESPACE).create_publisher(Image, "sensor_depth", SENSOR_QOS)
    assert ros.spin_until(lambda: depth_pub.get_subscription_count() > 0, timeout=10.0)
    rng = np.random.default_rng(1)
    frames = list(range(0, 30, 3))
    for n, i in enumerate(frames):
        t = 3.0 + n / FPS
        sensor = seven_scenes["depth_mm"][i] / 1000.0 * rng.normal(1.0, 0.01, (480, 640))  # 1 % noise
        sensor[seven_scenes["depth_mm"][i] == 0] = np.nan
        heard = rig.node.inputs.heard["depth"]
        depth_pub.publish(array_to_image(sensor.astype(np.float32), header(t)))
        assert ros.spin_until(lambda h=heard: rig.node.inputs.heard["depth"] > h, timeout=5.0)
        rig.send(seven_scenes["rgb"][i], t, k=seven_scenes["K"])
    assert rig.errors() == 0
    last = frames[-1]
    position = pose_to_matrix(rig.got["pose"][-1])[:3, 3]
    assert np.linalg.norm(position - truth[last][:3, 3]) <= 0.01 * np.linalg.norm(truth[last][:3, 3])
    assert _map_scale(rig, seven_scenes, truth, last) == pytest.approx(1.0, abs=0.01)
    diag = _diagnostics(rig)
    assert diag["scale status"].startswith("depth scale") and diag["images without depth"] == "0"


@pytest.mark.slow
def test_map_to_odom_composed_with_a_drifting_odometry_tree_gives_the_gt_camera_pose(ros, seven_scenes) -> None:
    truth = _truth(seven_scenes)
    rigid = np.stack([nearest_rigid(p) for p in seven_scenes["poses"]])
    model = GroundTruthStreamingModel(seven_scenes["rgb"], seven_scenes["depth_mm"], rigid, seven_scenes["K"])
    rig = NodeRig(ros, model, tf_mode="map_to_odom")
    robot = Robot(ros, rig)
    frames = list(range(0, 40, 4))
    odom_from_cam = {}
    for n, i in enumerate(frames):
        drift = _pose(0.02 * n, [0.03 * n, -0.01 * n, 0.002 * n])  # map <- odom, drifting with time
        odom_from_cam[n] = rigid_inverse(drift) @ truth[i]
        robot.send(4.0 + n / FPS, odom_from_cam[n])
        rig.send(seven_scenes["rgb"][i], 4.0 + n / FPS, k=seven_scenes["K"])
    assert rig.errors() == 0

    def ours() -> list:
        return [t for m in rig.got["/tf"] for t in m.transforms if t.child_frame_id == "odom"]

    assert ros.spin_until(lambda: len(ours()) == len(frames), timeout=5.0)
    for n, tr in enumerate(ours()):
        assert tr.header.frame_id == "map" and tr.header.stamp == _stamp(4.0 + n / FPS)
        composed = transform_to_matrix(tr) @ odom_from_cam[n]  # map <- odom (node) @ odom <- camera (robot)
        expected = truth[frames[n]]
        assert np.linalg.norm(composed[:3, 3] - expected[:3, 3]) < 0.01
        cos = (np.trace(composed[:3, :3].T @ expected[:3, :3]) - 1) / 2
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))) < 0.5
    assert not [
        t
        for m in rig.got["/tf"]
        for t in m.transforms
        if t.child_frame_id == CAMERA_FRAME and t.header.frame_id == "map"
    ]


@pytest.mark.parametrize("wait_s", [1.5, 0.0])
def test_odometry_published_after_the_image_is_waited_for_up_to_tf_wait_s(ros, seven_scenes, wait_s) -> None:
    truth = _truth(seven_scenes)
    rigid = np.stack([nearest_rigid(p) for p in seven_scenes["poses"]])
    model = GroundTruthStreamingModel(seven_scenes["rgb"], seven_scenes["depth_mm"], rigid, seven_scenes["K"])
    rig = NodeRig(ros, model, tf_mode="map_to_odom", tf_wait_s=wait_s)
    robot = Robot(ros, rig)
    robot.send(4.0, truth[0])
    rig.send(seven_scenes["rgb"][0], 4.0, k=seven_scenes["K"])
    # the next image comes before its odometry (the odometry at its stamp is not on /tf yet)
    rig.publish_info(seven_scenes["K"], seven_scenes["rgb"][4].shape[:2], 4.1)
    handled, lookup, inputs = rig.node.worker.handled, rig.node.inputs.tf, rig.node.inputs
    rig.pub_image.publish(rgb_to_image(seven_scenes["rgb"][4], header(4.1)))
    if wait_s:
        assert ros.spin_until(lambda: lookup.waiting, timeout=10.0), "the frame did not wait for its odometry"
    else:
        assert ros.spin_until(lambda: inputs.odometry_missing == 1, timeout=10.0)
    robot.publish(4.1, truth[4])
    assert ros.spin_until(lambda: rig.node.worker.handled > handled and rig.node.worker.wait_idle(0.0), 30.0)
    rig.wait_latched()

    def sent() -> list:
        return [t.header.stamp for m in rig.got["/tf"] for t in m.transforms if t.child_frame_id == "odom"]

    expected = [_stamp(4.0), _stamp(4.1)] if wait_s else [_stamp(4.0)]
    ros.spin_until(lambda: len(sent()) >= len(expected), timeout=5.0)
    ros.spin_for(0.2)
    assert sent() == expected
    diag = _diagnostics(rig)
    assert diag["frames without odometry"] == ("0" if wait_s else "1")
    assert diag["frames whose odometry came late (waited for)"] == ("1" if wait_s else "0")
    assert rig.errors() == 0


@pytest.mark.parametrize("rectify", [True, False])
def test_distorted_camera_is_rectified_or_warned_about(ros, seven_scenes, rectify) -> None:
    """The backend knows only the undistorted images: it finds them exactly when the node rectified."""
    info = model_to_camera_info(seven_scenes["K"], 640, 480, header(0.0), distortion=np.array([0.1, -0.05, 0, 0, 0]))
    camera = camera_info_to_model(info)
    frames = (0, 5)
    undistorted = seven_scenes["rgb"].copy()
    for i in frames:
        undistorted[i] = Rectifier()(seven_scenes["rgb"][i], camera)
    assert not np.array_equal(undistorted[0], seven_scenes["rgb"][0])
    rigid = np.stack([nearest_rigid(p) for p in seven_scenes["poses"]])
    model = GroundTruthStreamingModel(undistorted, seven_scenes["depth_mm"], rigid, seven_scenes["K"])
    rig = NodeRig(ros, model, rectify=rectify)
    for n, i in enumerate(frames):
        t = 6.0 + n / FPS
        info.header = header(t)
        heard = rig.node.inputs.heard["camera_info"]
        rig.pub_info.publish(info)
        assert ros.spin_until(lambda h=heard: rig.node.inputs.heard["camera_info"] > h, timeout=5.0)
        rig.send(seven_scenes["rgb"][i], t, expect_output=rectify)
    diag = _diagnostics(rig)
    assert rig.errors() == (0 if rectify else len(frames))
    assert ("input distortion" in diag) is not rectify
    assert diag["images without camera_info"] == "0"
