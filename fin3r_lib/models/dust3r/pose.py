"""Relative poses of a DUSt3R pair set, recovered from point maps by weighted Procrustes (Umeyama Sim(3)).

Frame s is paired with frame 0 as (I_s, I_0): the pair gives frame 0's points in frame s's camera.
The similarity mapping them onto frame 0's own points (from the pair (I_0, I_0)) is frame s's
camera-to-frame-0 transform up to the pair's scale, weighted by both confidences. Poses are not
differentiated through (computed in float64 numpy, as the session's alignment).
"""

from __future__ import annotations

import numpy as np
import torch

from fin3r_lib.geometry import umeyama_sim3

#: fewest valid point pairs a pose is fitted on; below it the pose is NaN
MIN_POINTS = 16


def sim3_from_points(src: torch.Tensor, dst: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """4x4 similarity [4, 4] with dst ~ s R src + t from [H, W, 3] point maps and [H, W] weights.

    Pixels with a non-finite point or a non-positive weight are ignored; NaN when too few remain.
    """
    src_np = src.detach().double().reshape(-1, 3).cpu().numpy()
    dst_np = dst.detach().double().reshape(-1, 3).cpu().numpy()
    w = weights.detach().double().reshape(-1).cpu().numpy()
    ok = np.isfinite(src_np).all(1) & np.isfinite(dst_np).all(1) & np.isfinite(w) & (w > 0)
    m = np.full((4, 4), np.nan)
    if ok.sum() >= MIN_POINTS:
        s, r, t = umeyama_sim3(src_np[ok], dst_np[ok], w[ok])
        m = np.eye(4)
        m[:3, :3] = s * r
        m[:3, 3] = t
    return torch.from_numpy(m).to(device=src.device, dtype=src.dtype)


def poses_from_pairs(
    own: torch.Tensor, own_conf: torch.Tensor, first_seen: torch.Tensor, first_conf: torch.Tensor
) -> torch.Tensor:
    """Similarities [B, S, 4, 4] of each frame's camera into frame 0's, from the pairs (I_s, I_0).

    own [B, S, H, W, 3] / own_conf [B, S, H, W]: each frame's self-view points; first_seen / first_conf:
    frame 0's points in frame s's camera. Frame 0 gets the identity.
    """
    b, s = own.shape[:2]
    eye = torch.eye(4, dtype=own.dtype, device=own.device)
    rows = []
    for i in range(b):
        row = [eye]
        for j in range(1, s):
            weights = torch.minimum(first_conf[i, j], own_conf[i, 0])
            row.append(sim3_from_points(first_seen[i, j], own[i, 0], weights))
        rows.append(torch.stack(row))
    return torch.stack(rows)
