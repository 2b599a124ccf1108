"""CUT3R's camera pose encoding and its conversion to a camera-to-world matrix.

The pose head outputs 7 raw numbers [t (3), q (4)]. The encoding scales the translation by
expm1(|t|) / |t| and normalizes the quaternion, scalar first (w, x, y, z), with w >= 0. The encoding
converts to a camera-to-world 4x4 in the first frame's camera coordinates (OpenCV axes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fin3r_lib.models.quaternion import matrix_to_quaternion, quaternion_to_matrix


def raw_to_pose_encoding(raw: torch.Tensor) -> torch.Tensor:
    """Pose-head output [..., 7] -> encoding [..., 7] = [t * expm1(|t|)/|t|, unit quaternion (w >= 0)]."""
    t, q = raw[..., :3], raw[..., 3:7]
    d = t.norm(dim=-1, keepdim=True)
    t = t * (torch.expm1(d) / d.clamp(min=1e-8))
    q = F.normalize(q, p=2, dim=-1)
    return torch.cat([t, torch.where(q[..., :1] < 0, -q, q)], dim=-1)


def pose_encoding_to_raw(enc: torch.Tensor) -> torch.Tensor:
    """Inverse of `raw_to_pose_encoding` up to the quaternion's norm: t * log1p(|t|)/|t|, q unchanged."""
    t, q = enc[..., :3], enc[..., 3:7]
    d = t.norm(dim=-1, keepdim=True)
    return torch.cat([t * (torch.log1p(d) / d.clamp(min=1e-8)), q], dim=-1)


def pose_encoding_to_cam_to_world(enc: torch.Tensor) -> torch.Tensor:
    """Pose encodings [..., 7] -> camera-to-world matrices [..., 4, 4]."""
    out = torch.zeros(*enc.shape[:-1], 4, 4, dtype=enc.dtype, device=enc.device)
    out[..., :3, :3] = quaternion_to_matrix(enc[..., 3:7])
    out[..., :3, 3] = enc[..., :3]
    out[..., 3, 3] = 1.0
    return out


def cam_to_world_to_pose_encoding(cam_to_world: torch.Tensor) -> torch.Tensor:
    """Camera-to-world matrices [..., 4, 4] -> pose encodings [..., 7] (inverse of the above)."""
    return torch.cat([cam_to_world[..., :3, 3], matrix_to_quaternion(cam_to_world[..., :3, :3])], dim=-1)


def ray_map(cam_to_world: torch.Tensor, intrinsics: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Ray map [6, H, W] (float32) of a view, as the reference's `get_ray_map`: its camera-to-world in the
    first view's coordinates and 3x3 intrinsics of the model grid (pixel centres at integer coordinates);
    channels are the camera centre, then the unit vector of c2w @ (K^-1 [u, v, 1], 1) (the point one unit
    along the ray, translation included, as the reference does). Computed in float64, cast to float32."""
    c2w, k = cam_to_world.double().cpu(), intrinsics.double().cpu()
    ys, xs = torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64)
    v, u = torch.meshgrid(ys, xs, indexing="ij")
    pixels = torch.stack([u, v, torch.ones_like(u)], dim=-1).reshape(-1, 3)
    rays = pixels @ torch.linalg.inv(k).T
    points = rays @ c2w[:3, :3].T + c2w[:3, 3]
    directions = (points / points.norm(dim=-1, keepdim=True)).reshape(height, width, 3)
    origins = c2w[:3, 3].expand(height, width, 3)
    return torch.cat([origins, directions], dim=-1).permute(2, 0, 1).float()
