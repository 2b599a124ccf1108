"""Intrinsics of a CUT3R frame, estimated from its self-view points (the model does not predict them).

The principal point is the image centre (W // 2, H // 2) and one focal length is fitted robustly:
minimize sum_i |p_i - f * (x_i / z_i, y_i / z_i)| over pixels p_i (relative to the principal point,
pixel centres at integer coordinates) by Weiszfeld iterations, as in the reference demo.
"""

from __future__ import annotations

import torch


def estimate_focal(points: torch.Tensor, iterations: int = 10) -> torch.Tensor:
    """Focal length in pixels [B] from self-view points [B, H, W, 3] (camera coordinates, OpenCV axes)."""
    b, h, w, _ = points.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, device=points.device, dtype=points.dtype),
        torch.arange(w, device=points.device, dtype=points.dtype),
        indexing="ij",
    )
    pixels = torch.stack([xs - (w // 2), ys - (h // 2)], dim=-1).reshape(1, -1, 2)
    pts = points.reshape(b, -1, 3)
    xy = (pts[..., :2] / pts[..., 2:3]).nan_to_num(posinf=0.0, neginf=0.0)
    dot_xy_px = (xy * pixels).sum(-1)
    dot_xy_xy = xy.square().sum(-1)
    focal = dot_xy_px.mean(1) / dot_xy_xy.mean(1)
    for _ in range(iterations):
        weight = (pixels - focal.view(-1, 1, 1) * xy).norm(dim=-1).clamp(min=1e-8).reciprocal()
        focal = (weight * dot_xy_px).mean(1) / (weight * dot_xy_xy).mean(1)
    return focal


def intrinsics_from_points(points: torch.Tensor) -> torch.Tensor:
    """3x3 intrinsics [B, 3, 3] of the points' pixel grid: fitted focal, principal point at the centre."""
    b, h, w, _ = points.shape
    k = torch.zeros(b, 3, 3, dtype=points.dtype, device=points.device)
    focal = estimate_focal(points)
    k[:, 0, 0] = focal
    k[:, 1, 1] = focal
    k[:, 0, 2] = w // 2
    k[:, 1, 2] = h // 2
    k[:, 2, 2] = 1.0
    return k
