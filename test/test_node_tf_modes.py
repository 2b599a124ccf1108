"""tf_mode map_to_odom: map -> odom composed with a drifting odometry tree heard on /tf gives the GT camera pose."""

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from ros_harness import RosHarness
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage
from transforms3d.euler import euler2mat

from fin3r_lib.data.tf_buffer import TfBuffer, TfError
from fin3r_lib.geometry import rigid_inverse
from fin3r_ros.conversions.transform import matrix_to_transform
from fin3r_ros.tf_modes import TF_STATIC_QOS, TfLookup, map_to_odom
from fin3r_ros.tf_publisher import TF_QOS, nearest_rigid


def _pose(yaw: float, xyz) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = euler2mat(0.1 * yaw, -0.05 * yaw, yaw)
    m[:3, 3] = xyz
    return m


def _angle_deg(r: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1))))


def test_map_to_odom_recovers_the_drift_between_map_and_odom():
    drift = _pose(0.3, [1.0, -2.0, 0.1])  # map <- odom
    odom_from_cam = _pose(-1.2, [0.4, 0.5, 1.2])
    np.testing.assert_allclose(map_to_odom(drift @ odom_from_cam, odom_from_cam), drift, atol=1e-12)


def test_own_buffer_prunes_old_samples_but_keeps_interpolation_at_the_edge():
    buf = TfBuffer()
    for k in range(100):
        buf.add("odom", "base_link", float(k), (k, 0, 0), (0, 0, 0, 1))
    buf.prune_before(90.5)
    assert buf.lookup("odom", "base_link", 90.75)[0, 3] == pytest.approx(90.75)
    with pytest.raises(TfError, match="outside the samples"):
        buf.lookup("odom", "base_link", 50.0)


def test_map_to_odom_with_a_drifting_odometry_tree_gives_the_gt_camera_pose(seven_scenes):
    """GT camera poses (7-Scenes, treated as map <- camera); odometry drifts away from them over time."""
    gt = [nearest_rigid(p) for p in seven_scenes["poses"][:20]]  # 7-Scenes rotations are orthonormal to ~1e-4
    base_from_cam = _pose(0.2, [0.1, 0.0, 0.3])
    stamps_ns = [1_000_000_000 + k * 100_000_000 for k in range(len(gt))]
    drift = [_pose(0.02 * k, [0.03 * k, -0.01 * k, 0.002 * k]) for k in range(len(gt))]  # map <- odom(t)
    odom_from_base = [rigid_inverse(d) @ g @ rigid_inverse(base_from_cam) for d, g in zip(drift, gt, strict=True)]

    with RosHarness() as ros:
        robot = ros.node("robot")
        listener = ros.node("listener")
        lookup = TfLookup(listener)
        tf_pub = robot.create_publisher(TFMessage, "/tf", TF_QOS)
        static_pub = robot.create_publisher(TFMessage, "/tf_static", TF_STATIC_QOS)
        static = matrix_to_transform(base_from_cam, Header(frame_id="base_link"), "camera")
        static_pub.publish(TFMessage(transforms=[static]))
        assert ros.spin_until(lambda: robot.count_subscribers("/tf") > 0, timeout=10.0)
        for t, m in zip(stamps_ns, odom_from_base, strict=True):
            h = Header(frame_id="odom", stamp=Time(sec=t // 10**9, nanosec=t % 10**9))
            tf_pub.publish(TFMessage(transforms=[matrix_to_transform(m, h, "base_link")]))

        def heard_all() -> bool:
            try:
                lookup.lookup("odom", "camera", stamps_ns[-1])
            except TfError:
                return False
            return True

        assert ros.spin_until(heard_all, timeout=10.0)
        for k, t in enumerate(stamps_ns):
            odom_from_cam = lookup.lookup("odom", "camera", t)
            map_from_odom = map_to_odom(gt[k], odom_from_cam)
            # what a TF user sees: map <- odom (ours) @ odom <- base (robot) @ base <- camera (robot)
            composed = map_from_odom @ odom_from_base[k] @ base_from_cam
            assert np.linalg.norm(composed[:3, 3] - gt[k][:3, 3]) < 0.01
            assert _angle_deg(composed[:3, :3].T @ gt[k][:3, :3]) < 0.5
            np.testing.assert_allclose(map_from_odom, drift[k], atol=1e-6)
        assert lookup.backend in ("tf2_ros", "fin3r_lib.TfBuffer")
