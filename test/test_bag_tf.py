"""The bag-replay TF buffer: ROS quaternion order, chains through a common ancestor, interpolation, errors."""

from __future__ import annotations

import numpy as np
import pytest

from fin3r_lib.data.tf_buffer import TfBuffer, TfError, slerp, xyzw_to_wxyz

S45 = np.sin(np.pi / 4)


def test_ros_quaternion_order_is_x_y_z_w():
    np.testing.assert_array_equal(xyzw_to_wxyz((0.1, 0.2, 0.3, 0.9)), [0.9, 0.1, 0.2, 0.3])
    tf = TfBuffer()
    tf.add("map", "cam", 0.0, (1.0, 2.0, 3.0), (0.0, 0.0, S45, S45), static=True)  # 90 degrees about z
    m = tf.lookup("map", "cam", 5.0)
    np.testing.assert_allclose(m[:3, :3], [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(m @ [1.0, 0.0, 0.0, 1.0], [1.0, 3.0, 3.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(tf.lookup("cam", "map", 5.0), np.linalg.inv(m), atol=1e-12)


def test_lookup_between_branches_goes_through_the_common_ancestor():
    tf = TfBuffer()
    tf.add("map", "odom", 0.0, (1.0, 0.0, 0.0), (0, 0, 0, 1), static=True)
    tf.add("odom", "left", 0.0, (0.0, 1.0, 0.0), (0, 0, 0, 1), static=True)
    tf.add("odom", "right", 0.0, (0.0, -1.0, 0.0), (0, 0, 0, 1), static=True)
    np.testing.assert_allclose(tf.lookup("left", "right", 0.0)[:3, 3], [0.0, -2.0, 0.0])
    assert tf.root("right") == "map" and tf.frames == {"map", "odom", "left", "right"}


def test_dynamic_edges_interpolate_and_refuse_to_extrapolate():
    tf = TfBuffer()
    tf.add("map", "base", 2.0, (2.0, 0.0, 0.0), (0.0, 0.0, S45, S45))  # added out of order on purpose
    tf.add("map", "base", 0.0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))
    mid = tf.lookup("map", "base", 1.0)
    c = np.cos(np.pi / 4)  # half of the 90 degrees about z
    np.testing.assert_allclose(mid[:3, 3], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(mid[:3, :3], [[c, -c, 0.0], [c, c, 0.0], [0.0, 0.0, 1.0]], atol=1e-12)
    with pytest.raises(TfError, match="outside the samples"):
        tf.lookup("map", "base", 2.5)
    with pytest.raises(TfError, match="not in the TF tree"):
        tf.lookup("map", "nowhere", 1.0)
    tf.add("world", "other", 0.0, (0, 0, 0), (0, 0, 0, 1), static=True)
    with pytest.raises(TfError, match="not connected"):
        tf.lookup("map", "other", 1.0)


def test_slerp_takes_the_short_way():
    q0 = np.array([1.0, 0.0, 0.0, 0.0])
    q1 = -np.array([np.cos(0.5), 0.0, 0.0, np.sin(0.5)])  # same rotation as its negation
    q = slerp(q0, q1, 0.5)
    np.testing.assert_allclose(q, [np.cos(0.25), 0.0, 0.0, np.sin(0.25)], atol=1e-12)
