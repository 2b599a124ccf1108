"""MoGe's camera conventions and its recovery of focal length and z-shift from an affine point map.

- View-plane UV: pixel centres spread over [-w/d, w/d] x [-h/d, h/d] (d = the image diagonal, in the
  aspect ratio's units), so the focal length is relative to half the diagonal.
- Recovery (as MoGe's `recover_focal_shift`): the point map, its UV and mask are subsampled to 64x64
  by nearest-neighbour lookup; per image, the shift t minimizing ||f(t) xy / (z + t) - uv||^2 (f in
  closed form for each t, or given) is found by Levenberg-Marquardt from t = 0 (scipy, ftol 1e-3);
  fewer than 2 valid samples give f = 1, t = 0.
- Normalized intrinsics: fx = f/2 * sqrt(1 + a^2) / a, fy = f/2 * sqrt(1 + a^2), centre (0.5, 0.5),
  with image coordinates in [0, 1] (pixel centres at (i + 0.5) / size).
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

SUBSAMPLED = (64, 64)


def view_plane_uv(height: int, width: int, aspect: float | None = None, **like: object) -> torch.Tensor:
    """(H, W, 2) view-plane coordinates of pixel centres for an image of aspect ratio `aspect` (w/h)."""
    a = width / height if aspect is None else aspect
    span_x, span_y = a / math.sqrt(1 + a * a), 1 / math.sqrt(1 + a * a)
    u = torch.linspace(-span_x * (width - 1) / width, span_x * (width - 1) / width, width, **like)
    v = torch.linspace(-span_y * (height - 1) / height, span_y * (height - 1) / height, height, **like)
    return torch.stack(torch.meshgrid(u, v, indexing="xy"), dim=-1)


def uv_channels(batch: int, height: int, width: int, aspect: float, like: torch.Tensor) -> torch.Tensor:
    """View-plane UV as two feature channels [N, 2, H, W] (the decoders' aspect-ratio input)."""
    uv = view_plane_uv(height, width, aspect, dtype=like.dtype, device=like.device)
    return uv.permute(2, 0, 1).unsqueeze(0).expand(batch, -1, -1, -1)


def _residuals(uv: np.ndarray, xy: np.ndarray, z: np.ndarray, focal: float | None, shift: np.ndarray) -> np.ndarray:
    proj = xy / (z + shift)[:, None]
    f = (proj * uv).sum() / np.square(proj).sum() if focal is None else focal
    return (f * proj - uv).ravel()


def solve_shift(uv: np.ndarray, points: np.ndarray, focal: float | None) -> tuple[float, float]:
    """(shift, focal) minimizing ||f xy / (z + shift) - uv|| over valid samples uv (n, 2), points (n, 3)."""
    from scipy.optimize import least_squares

    xy, z = points[:, :2], points[:, 2]
    solution = least_squares(partial(_residuals, uv, xy, z, focal), x0=0, ftol=1e-3, method="lm")
    shift = solution["x"].squeeze().astype(np.float32)
    if focal is None:
        proj = xy / (z + shift)[:, None]
        focal = float((proj * uv).sum() / np.square(proj).sum())
    return float(shift), float(focal)


def recover_focal_shift(
    points: torch.Tensor, mask: torch.Tensor | None, focal: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image of `points` [N, H, W, 3]: (focal [N], shift [N]); `focal` given -> only the shift is solved."""
    n, h, w, _ = points.shape
    uv = view_plane_uv(h, w, dtype=points.dtype, device=points.device)
    pts = F.interpolate(points.permute(0, 3, 1, 2), SUBSAMPLED, mode="nearest").permute(0, 2, 3, 1)
    uv_lr = F.interpolate(uv.permute(2, 0, 1)[None], SUBSAMPLED, mode="nearest")[0].permute(1, 2, 0)
    pts_np, uv_np = pts.detach().cpu().numpy(), uv_lr.cpu().numpy()
    valid = None
    if mask is not None:
        valid = (F.interpolate(mask.float()[:, None], SUBSAMPLED, mode="nearest")[:, 0] > 0).cpu().numpy()
    focals, shifts = [], []
    for i in range(n):
        p_i, uv_i = (pts_np[i], uv_np) if valid is None else (pts_np[i][valid[i]], uv_np[valid[i]])
        p_i, uv_i = p_i.reshape(-1, 3), uv_i.reshape(-1, 2)
        if uv_i.shape[0] < 2:
            focals.append(1.0)
            shifts.append(0.0)
            continue
        given = None if focal is None else float(focal[i])
        shift, f = solve_shift(uv_i, p_i, given)
        focals.append(f)
        shifts.append(shift)
    like = {"dtype": points.dtype, "device": points.device}
    return (torch.tensor(focals, **like) if focal is None else focal.to(**like)), torch.tensor(shifts, **like)


def focal_from_fov_x(fov_x_deg: torch.Tensor, aspect: float) -> torch.Tensor:
    """Focal relative to half the diagonal, from the horizontal field of view in degrees."""
    return aspect / math.sqrt(1 + aspect * aspect) / torch.tan(torch.deg2rad(fov_x_deg) / 2)


def normalized_intrinsics(focal: torch.Tensor, aspect: float) -> torch.Tensor:
    """[N, 3, 3] intrinsics in image-fraction units (centre 0.5, 0.5) from MoGe focals [N]."""
    half_diag = math.sqrt(1 + aspect * aspect) / 2
    k = torch.zeros(*focal.shape, 3, 3, dtype=focal.dtype, device=focal.device)
    k[..., 0, 0] = focal * half_diag / aspect
    k[..., 1, 1] = focal * half_diag
    k[..., 0, 2] = k[..., 1, 2] = 0.5
    k[..., 2, 2] = 1.0
    return k


def depth_to_points(depth: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Depth [N, H, W] and normalized intrinsics [N, 3, 3] -> camera points [N, H, W, 3] (OpenCV axes)."""
    _, h, w = depth.shape
    like = {"dtype": depth.dtype, "device": depth.device}
    u = (torch.arange(w, **like) + 0.5) / w
    v = (torch.arange(h, **like) + 0.5) / h
    k = intrinsics[:, None, None]
    x = (u[None, None, :] - k[..., 0, 2]) / k[..., 0, 0] * depth
    y = (v[None, :, None] - k[..., 1, 2]) / k[..., 1, 1] * depth
    return torch.stack([x, y, depth], dim=-1)


def pixel_intrinsics(normalized: np.ndarray, height: int, width: int) -> np.ndarray:
    """Normalized intrinsics (3, 3) -> pixel units with pixel centres at integer coordinates (OpenCV)."""
    k = np.asarray(normalized, np.float64).copy()
    k[0, 0], k[0, 2] = k[0, 0] * width, k[0, 2] * width - 0.5
    k[1, 1], k[1, 2] = k[1, 1] * height, k[1, 2] * height - 0.5
    return k
