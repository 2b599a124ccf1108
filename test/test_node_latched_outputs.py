"""`path` and `map` go out from the executor's timer, not from the worker: they keep coming while the worker is
busy inside the model (ground-truth backend gated in forward, real rclpy)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from gt_backend import GatedModel
from node_fixtures import NodeRig, header
from ros_harness import RosHarness

from fin3r_ros.conversions import cloud_to_arrays, rgb_to_image
from fin3r_ros.tf_publisher import points_to_map


@pytest.fixture
def ros():
    with RosHarness() as harness:
        yield harness


def test_path_and_map_are_published_by_the_timer_while_the_worker_is_busy(ros, seven_scenes) -> None:
    model = GatedModel.from_fixture(seven_scenes)
    model.gate, model.entered = threading.Event(), threading.Event()
    model.gate.set()
    # one tick every 2 s: frames 0 and 1 come out well within one period, so a publisher on the worker
    # (at most map_rate_hz, from the frame) would have sent frame 0's path only
    rig = NodeRig(ros, model, map_rate_hz=0.5, keyframe_min_flow_px=0.0)
    rgb = seven_scenes["rgb"]
    rig.send(rgb[0], 1.0, latched=False)
    rig.send(rgb[10], 1.1, latched=False)
    assert rig.node.session.num_keyframes == 2
    model.gate.clear()
    model.entered.clear()
    rig.pub_image.publish(rgb_to_image(rgb[20], header(1.2)))
    assert ros.spin_until(model.entered.is_set, timeout=10.0), "frame 2 did not reach the model"

    # the worker is stuck in forward with frame 2; the timer still publishes frames 0 and 1
    assert ros.spin_until(lambda: rig.got["path"] and len(rig.got["path"][-1].poses) == 2, timeout=20.0)
    assert ros.spin_until(lambda: rig.got["map"] and rig.got["map"][-1].header.stamp.nanosec == 100_000_000, 20.0)
    assert not rig.node.worker.wait_idle(0.0), "the worker must still be busy with frame 2"
    assert len(rig.got["depth"]) == 2
    points, _ = rig.node.runner.map_cloud()  # stable: the worker waits inside the model
    published = cloud_to_arrays(rig.got["map"][-1])["points"]
    np.testing.assert_array_equal(published, points_to_map(points))
    assert len(published) > 10_000
    poses = [p.pose.position for p in rig.got["pose"]]
    assert [(p.pose.position.x, p.pose.position.y) for p in rig.got["path"][-1].poses] == [(p.x, p.y) for p in poses]

    model.gate.set()
    assert ros.spin_until(lambda: len(rig.got["path"][-1].poses) == 3, timeout=20.0)
    assert rig.node.worker.wait_idle(5.0)
