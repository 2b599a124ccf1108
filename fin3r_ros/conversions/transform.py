"""4x4 rigid transforms <-> geometry_msgs TransformStamped / Transform / PoseStamped / Pose.

Rotations go through transforms3d, whose quaternions are (w, x, y, z); ROS orders them (x, y, z, w).
The reordering happens only in `_quaternion_msg` and `_rotation_of`.
"""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Point, Pose, PoseStamped, Quaternion, Transform, TransformStamped, Vector3
from std_msgs.msg import Header
from transforms3d.quaternions import mat2quat, quat2mat

from .errors import ConversionError

_RIGID_TOLERANCE = 1e-6


def _checked_rigid(matrix: np.ndarray, what: str) -> np.ndarray:
    """The matrix as float64 if it is a finite 4x4 rigid transform, else ConversionError."""
    t = np.asarray(matrix, dtype=np.float64)
    if t.shape != (4, 4) or not np.isfinite(t).all():
        raise ConversionError(f"{what}: expected a finite 4x4 matrix, got shape {t.shape}: {t.tolist()}")
    r = t[:3, :3]
    orthogonality = float(np.abs(r.T @ r - np.eye(3)).max())
    bottom = float(np.abs(t[3] - [0.0, 0.0, 0.0, 1.0]).max())
    if orthogonality > _RIGID_TOLERANCE or np.linalg.det(r) < 0 or bottom > _RIGID_TOLERANCE:
        raise ConversionError(
            f"{what}: expected a rigid transform (orthonormal rotation with det +1, last row 0 0 0 1), "
            f"got max |R^T R - I| = {orthogonality:.3g}, det R = {np.linalg.det(r):.6g}, last row {t[3].tolist()}"
        )
    return t


def _quaternion_msg(rotation: np.ndarray) -> Quaternion:
    """Unit quaternion message (ROS x, y, z, w; w >= 0) of a rotation matrix."""
    w, x, y, z = mat2quat(rotation)
    q = np.array([w, x, y, z]) / np.linalg.norm([w, x, y, z])
    if q[0] < 0:
        q = -q
    return Quaternion(x=float(q[1]), y=float(q[2]), z=float(q[3]), w=float(q[0]))


def _rotation_of(q: Quaternion, what: str) -> np.ndarray:
    """Rotation matrix of a quaternion message, normalised; ConversionError when zero or not finite."""
    wxyz = np.array([q.w, q.x, q.y, q.z], dtype=np.float64)
    norm = float(np.linalg.norm(wxyz))
    if not np.isfinite(norm) or norm < 1e-12:
        raise ConversionError(f"{what}: expected a finite non-zero quaternion, got x={q.x} y={q.y} z={q.z} w={q.w}")
    return quat2mat(wxyz / norm)


def _matrix(translation: Vector3 | Point, rotation: Quaternion, what: str) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3] = _rotation_of(rotation, what)
    t[:3, 3] = [translation.x, translation.y, translation.z]
    if not np.isfinite(t).all():
        raise ConversionError(f"{what}: expected a finite translation, got {t[:3, 3].tolist()}")
    return t


def matrix_to_transform(matrix: np.ndarray, header: Header, child_frame_id: str) -> TransformStamped:
    """TransformStamped (header.frame_id = parent) of a 4x4 rigid parent-from-child matrix."""
    t = _checked_rigid(matrix, "matrix_to_transform")
    x, y, z = (float(v) for v in t[:3, 3])
    return TransformStamped(
        header=header,
        child_frame_id=child_frame_id,
        transform=Transform(translation=Vector3(x=x, y=y, z=z), rotation=_quaternion_msg(t[:3, :3])),
    )


def transform_to_matrix(msg: TransformStamped | Transform) -> np.ndarray:
    """4x4 float64 matrix of a TransformStamped or Transform (quaternion normalised)."""
    tf = msg.transform if isinstance(msg, TransformStamped) else msg
    return _matrix(tf.translation, tf.rotation, "transform_to_matrix")


def matrix_to_pose(matrix: np.ndarray, header: Header) -> PoseStamped:
    """PoseStamped of a 4x4 rigid matrix (the pose of a body in `header.frame_id`)."""
    t = _checked_rigid(matrix, "matrix_to_pose")
    x, y, z = (float(v) for v in t[:3, 3])
    return PoseStamped(header=header, pose=Pose(position=Point(x=x, y=y, z=z), orientation=_quaternion_msg(t[:3, :3])))


def pose_to_matrix(msg: PoseStamped | Pose) -> np.ndarray:
    """4x4 float64 matrix of a PoseStamped or Pose (quaternion normalised)."""
    pose = msg.pose if isinstance(msg, PoseStamped) else msg
    return _matrix(pose.position, pose.orientation, "pose_to_matrix")
