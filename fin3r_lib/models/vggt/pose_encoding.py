"""VGGT's camera encoding [tx, ty, tz, qx, qy, qz, qw, fov_h, fov_w] <-> extrinsics and intrinsics.

Extrinsics are camera-from-world [R | t] (OpenCV axes), quaternions scalar-last (x, y, z, w) with
w >= 0 when derived from a matrix. Intrinsics: fy = (H/2)/tan(fov_h/2), fx = (W/2)/tan(fov_w/2),
principal point (W/2, H/2).
"""

from __future__ import annotations

import torch

from fin3r_lib.errors import InputError
from fin3r_lib.models.quaternion import matrix_to_quaternion, quaternion_to_matrix


def quat_to_mat(quat: torch.Tensor) -> torch.Tensor:
    """Scalar-last quaternions (..., 4), not necessarily unit -> rotation matrices (..., 3, 3)."""
    return quaternion_to_matrix(quat[..., [3, 0, 1, 2]])


def mat_to_quat(mat: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) -> unit scalar-last quaternions (..., 4) with w >= 0."""
    return matrix_to_quaternion(mat)[..., [1, 2, 3, 0]]


def intrinsics_from_fov(fov_h: torch.Tensor, fov_w: torch.Tensor, image_hw: tuple[int, int]) -> torch.Tensor:
    """Pinhole intrinsics (..., 3, 3) from vertical/horizontal fields of view of an H x W image."""
    h, w = image_hw
    k = torch.zeros(*fov_h.shape, 3, 3, dtype=fov_h.dtype, device=fov_h.device)
    k[..., 0, 0] = (w / 2.0) / torch.tan(fov_w / 2.0)
    k[..., 1, 1] = (h / 2.0) / torch.tan(fov_h / 2.0)
    k[..., 0, 2] = w / 2
    k[..., 1, 2] = h / 2
    k[..., 2, 2] = 1.0
    return k


def pose_encoding_to_extri_intri(
    pose_enc: torch.Tensor, image_hw: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """pose_enc (..., 9) -> (extrinsics (..., 3, 4) camera-from-world, intrinsics (..., 3, 3))."""
    if pose_enc.shape[-1] != 9:
        raise InputError(f"pose encoding: expected a last dimension of 9, got shape {tuple(pose_enc.shape)}")
    rot = quat_to_mat(pose_enc[..., 3:7])
    extrinsics = torch.cat([rot, pose_enc[..., :3, None]], dim=-1)
    return extrinsics, intrinsics_from_fov(pose_enc[..., 7], pose_enc[..., 8], image_hw)


def extri_intri_to_pose_encoding(
    extrinsics: torch.Tensor, intrinsics: torch.Tensor, image_hw: tuple[int, int]
) -> torch.Tensor:
    """(extrinsics (..., 3|4, 4) camera-from-world, intrinsics (..., 3, 3)) -> pose_enc (..., 9)."""
    h, w = image_hw
    quat = mat_to_quat(extrinsics[..., :3, :3])
    fov_h = 2 * torch.atan((h / 2) / intrinsics[..., 1, 1])
    fov_w = 2 * torch.atan((w / 2) / intrinsics[..., 0, 0])
    return torch.cat([extrinsics[..., :3, 3], quat, fov_h[..., None], fov_w[..., None]], dim=-1)


def extrinsics_to_cam_to_world(extrinsics: torch.Tensor) -> torch.Tensor:
    """Camera-from-world [R | t] (..., 3, 4) -> camera-to-world 4x4 [R^T | -R^T t] (..., 4, 4)."""
    rot_t = extrinsics[..., :3, :3].transpose(-1, -2)
    out = torch.zeros(*extrinsics.shape[:-2], 4, 4, dtype=extrinsics.dtype, device=extrinsics.device)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -(rot_t @ extrinsics[..., :3, 3:4])[..., 0]
    out[..., 3, 3] = 1.0
    return out
