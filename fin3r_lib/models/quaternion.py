"""Quaternion <-> rotation matrix conversions in torch, scalar first (w, x, y, z).

VGGT's pose encoding stores quaternions scalar last and CUT3R's scalar first; both convert through
these two functions (VGGT reorders at its boundary).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fin3r_lib.errors import InputError


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Scalar-first quaternions [..., 4] (any non-zero norm) -> rotation matrices [..., 3, 3]."""
    w, x, y, z = q.unbind(-1)
    s = 2.0 / (q * q).sum(-1)
    rows = (
        1 - s * (y * y + z * z),
        s * (x * y - z * w),
        s * (x * z + y * w),
        s * (x * y + z * w),
        1 - s * (x * x + z * z),
        s * (y * z - x * w),
        s * (x * z - y * w),
        s * (y * z + x * w),
        1 - s * (x * x + y * y),
    )
    return torch.stack(rows, -1).reshape(*q.shape[:-1], 3, 3)


def matrix_to_quaternion(rot: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [..., 3, 3] -> unit scalar-first quaternions [..., 4] with w >= 0.

    Uses the best-conditioned of the four candidate formulas per matrix.
    """
    if rot.shape[-2:] != (3, 3):
        raise InputError(f"matrix_to_quaternion: expected (..., 3, 3) matrices, got shape {tuple(rot.shape)}")
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = rot.reshape(*rot.shape[:-2], 9).unbind(-1)
    q_abs = torch.sqrt(
        F.relu(
            torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1)
        )
    )
    cand = torch.stack(
        [
            torch.stack([q_abs[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01], dim=-1),
            torch.stack([m21 - m12, q_abs[..., 1] ** 2, m10 + m01, m02 + m20], dim=-1),
            torch.stack([m02 - m20, m10 + m01, q_abs[..., 2] ** 2, m12 + m21], dim=-1),
            torch.stack([m10 - m01, m20 + m02, m21 + m12, q_abs[..., 3] ** 2], dim=-1),
        ],
        dim=-2,
    )
    cand = cand / (2.0 * q_abs[..., None].clamp(min=0.1))
    best = q_abs.argmax(dim=-1)
    q = torch.gather(cand, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = F.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)
