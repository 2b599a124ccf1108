"""4x4 matrices <-> TransformStamped / PoseStamped, and stamps <-> seconds."""

from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from conversion_samples import random_rigid
from geometry_msgs.msg import Pose, Quaternion, Transform
from std_msgs.msg import Header

from fin3r_ros.conversions import (
    ConversionError,
    matrix_to_pose,
    matrix_to_transform,
    pose_to_matrix,
    seconds_to_stamp,
    stamp_to_seconds,
    transform_to_matrix,
)

RNG = np.random.default_rng(5)


def quaternion_xyzw(q: Quaternion) -> np.ndarray:
    return np.array([q.x, q.y, q.z, q.w])


@pytest.mark.parametrize("seed", range(20))
def test_transform_round_trip_with_a_unit_quaternion(seed):
    t = random_rigid(np.random.default_rng(seed))
    msg = matrix_to_transform(t, Header(frame_id="map"), "camera")
    assert (msg.header.frame_id, msg.child_frame_id) == ("map", "camera")
    q = quaternion_xyzw(msg.transform.rotation)
    assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-15) and q[3] >= 0
    np.testing.assert_allclose(transform_to_matrix(msg), t, atol=1e-12)
    np.testing.assert_allclose(transform_to_matrix(msg.transform), t, atol=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_pose_round_trip(seed):
    t = random_rigid(np.random.default_rng(100 + seed))
    msg = matrix_to_pose(t, Header(frame_id="map"))
    assert msg.header.frame_id == "map"
    assert [msg.pose.position.x, msg.pose.position.y, msg.pose.position.z] == t[:3, 3].tolist()
    np.testing.assert_allclose(pose_to_matrix(msg), t, atol=1e-12)
    np.testing.assert_allclose(pose_to_matrix(msg.pose), t, atol=1e-12)


def test_quaternion_is_in_ros_order_x_y_z_w():
    # 90 degrees about z: q = (0, 0, sin 45, cos 45) in x, y, z, w.
    t = np.eye(4)
    t[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    q = quaternion_xyzw(matrix_to_transform(t, Header(), "c").transform.rotation)
    np.testing.assert_allclose(q, [0, 0, np.sqrt(0.5), np.sqrt(0.5)], atol=1e-15)


def test_a_non_unit_quaternion_in_a_message_is_normalised():
    pose = Pose()
    pose.orientation = Quaternion(x=0.0, y=0.0, z=2.0, w=2.0)
    expected = np.eye(4)
    expected[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    np.testing.assert_allclose(pose_to_matrix(pose), expected, atol=1e-15)


# ---- bad input ----


def scaled() -> np.ndarray:
    t = np.eye(4)
    t[:3, :3] *= 1.5
    return t


def reflected() -> np.ndarray:
    return np.diag([1.0, 1.0, -1.0, 1.0])


def nan_matrix() -> np.ndarray:
    t = np.eye(4)
    t[0, 3] = np.nan
    return t


@pytest.mark.parametrize(
    "matrix, match",
    [
        (np.eye(3), r"expected a finite 4x4 matrix, got shape \(3, 3\)"),
        (nan_matrix(), r"expected a finite 4x4 matrix, got shape \(4, 4\)"),
        (scaled(), r"expected a rigid transform .* got max \|R\^T R - I\| = 1.25, det R = 3.375"),
        (reflected(), r"expected a rigid transform .* det R = -1"),
    ],
)
def test_non_rigid_matrices_are_rejected(matrix, match):
    with pytest.raises(ConversionError, match="matrix_to_transform: " + match):
        matrix_to_transform(matrix, Header(), "c")
    with pytest.raises(ConversionError, match="matrix_to_pose: " + match):
        matrix_to_pose(matrix, Header())


def test_zero_or_nan_quaternion_and_nan_translation_are_rejected():
    with pytest.raises(ConversionError, match=r"transform_to_matrix: expected a finite non-zero quaternion, got x=0.0"):
        transform_to_matrix(Transform(rotation=Quaternion(x=0.0, y=0.0, z=0.0, w=0.0)))
    with pytest.raises(ConversionError, match=r"pose_to_matrix: expected a finite non-zero quaternion, got x=nan"):
        pose_to_matrix(Pose(orientation=Quaternion(x=np.nan)))
    pose = Pose()
    pose.position.y = np.inf
    with pytest.raises(ConversionError, match=r"pose_to_matrix: expected a finite translation, got \[0.0, inf, 0.0\]"):
        pose_to_matrix(pose)


# ---- stamps ----


def test_seconds_to_stamp_takes_the_nearest_nanosecond():
    assert seconds_to_stamp(0.1) == Time(sec=0, nanosec=100_000_000)
    assert seconds_to_stamp(1.5) == Time(sec=1, nanosec=500_000_000)
    assert seconds_to_stamp(2.9999999999) == Time(sec=3, nanosec=0)
    assert seconds_to_stamp(-0.25) == Time(sec=-1, nanosec=750_000_000)
    assert seconds_to_stamp(1_700_000_000.123456) == Time(sec=1_700_000_000, nanosec=123_456_001)  # float's own value


def test_stamp_to_seconds_is_the_nearest_float():
    assert stamp_to_seconds(Time(sec=12, nanosec=345_678_901)) == 12.345678901
    assert stamp_to_seconds(Time(sec=1_700_000_000, nanosec=999_999_999)) == 1_700_000_001.0 - 1e-9


def test_stamps_round_trip_exactly_where_a_float_holds_nanoseconds():
    secs = RNG.integers(0, 2**22, size=200)  # below 2**22 s a float64 resolves well under half a nanosecond
    nanos = RNG.integers(0, 10**9, size=200)
    for sec, nanosec in zip(secs.tolist(), nanos.tolist(), strict=True):
        stamp = Time(sec=sec, nanosec=nanosec)
        assert seconds_to_stamp(stamp_to_seconds(stamp)) == stamp


def test_non_finite_or_out_of_range_seconds_are_rejected():
    with pytest.raises(ConversionError, match=r"seconds_to_stamp: expected finite seconds, got nan"):
        seconds_to_stamp(float("nan"))
    with pytest.raises(ConversionError, match=r"expected seconds within int32 range .* got 3000000000.0"):
        seconds_to_stamp(3e9)
