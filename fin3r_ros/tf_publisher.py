"""TF output and the map frame's fixed rotation, in one place.

The session's world is the first keyframe's optical frame (z forward, y down). The published map frame
is z up per REP 105, by a fixed rotation: x_map = z_opt, y_map = -x_opt, z_map = -y_opt.
TF goes through `tf2_ros.TransformBroadcaster` when tf2_ros imports (a ROS install), else through a
plain `tf2_msgs/TFMessage` publisher on `/tf` with the same QoS (PyPI wheels only).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile

from fin3r_lib.errors import InputError

#: rotation taking optical-world coordinates to map coordinates (4x4, map_from_optical_world)
MAP_FROM_OPTICAL_WORLD = np.array(
    [[0.0, 0.0, 1.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)

#: QoS of /tf (tf2_ros's default for dynamic transforms)
TF_QOS = QoSProfile(depth=100)


#: largest max |R^T R - I| of a pose rotation that `to_map` projects onto SO(3) instead of rejecting
ROTATION_TOLERANCE = 1e-3


def nearest_rigid(pose: np.ndarray) -> np.ndarray:
    """A 4x4 pose (float64 copy) with its rotation replaced by the nearest rotation (SVD).

    Datasets and float32 models give rotations orthonormal only to ~1e-5, which a quaternion cannot hold.
    InputError when the rotation is further than ROTATION_TOLERANCE from orthonormal, or a reflection.
    """
    out = np.array(pose, dtype=np.float64)
    r = out[:3, :3]
    error = float(np.abs(r.T @ r - np.eye(3)).max()) if np.isfinite(r).all() else float("inf")
    if error > ROTATION_TOLERANCE or np.linalg.det(r) <= 0:
        raise InputError(
            f"expected a camera pose with a rotation (max |R^T R - I| <= {ROTATION_TOLERANCE}), got {r.tolist()}"
        )
    u, _, vt = np.linalg.svd(r)
    out[:3, :3] = u @ vt
    return out


def to_map(cam_to_world: np.ndarray) -> np.ndarray:
    """Camera-to-map 4x4 of a camera-to-(optical session world) 4x4, its rotation made exactly orthonormal."""
    return MAP_FROM_OPTICAL_WORLD @ nearest_rigid(cam_to_world)


def points_to_map(points: np.ndarray) -> np.ndarray:
    """(N, 3) optical-world points in map coordinates (same dtype as given)."""
    return (np.asarray(points) @ MAP_FROM_OPTICAL_WORLD[:3, :3].T).astype(np.asarray(points).dtype, copy=False)


class TfPublisher:
    """Sends TransformStamped lists to /tf (tf2_ros when available, a TFMessage publisher otherwise)."""

    def __init__(self, node: Node) -> None:
        try:
            from tf2_ros import TransformBroadcaster
        except ImportError:
            from tf2_msgs.msg import TFMessage

            publisher = node.create_publisher(TFMessage, "/tf", TF_QOS)
            self.backend = "tf2_msgs"
            self._send = lambda transforms: publisher.publish(TFMessage(transforms=transforms))
        else:
            broadcaster = TransformBroadcaster(node, qos=TF_QOS)
            self.backend = "tf2_ros"
            self._send = broadcaster.sendTransform

    def send(self, transforms: Sequence[TransformStamped]) -> None:
        """Publish `transforms` on /tf."""
        self._send(list(transforms))
