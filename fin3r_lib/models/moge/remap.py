"""How MoGe's raw point channels become points (`remap_output` in the release's model config)."""

from __future__ import annotations

import torch

from fin3r_lib.errors import InputError

REMAPS = ("linear", "sinh", "exp", "sinh_exp")


def check_remap(kind: str) -> str:
    """`kind` if it is a known remap, else InputError."""
    if kind not in REMAPS:
        raise InputError(f"MoGe remap_output: expected one of {REMAPS}, got {kind!r}")
    return kind


def remap_points(points: torch.Tensor, kind: str) -> torch.Tensor:
    """Raw [..., 3] -> points: linear as is; sinh elementwise; exp: z = exp(z'), (x, y) = (x', y') z;
    sinh_exp: (sinh x', sinh y', exp z')."""
    if kind == "linear":
        return points
    if kind == "sinh":
        return torch.sinh(points)
    xy, z = points.split([2, 1], dim=-1)
    if kind == "exp":
        z = torch.exp(z)
        return torch.cat([xy * z, z], dim=-1)
    if kind == "sinh_exp":
        return torch.cat([torch.sinh(xy), torch.exp(z)], dim=-1)
    raise InputError(f"MoGe remap_output: expected one of {REMAPS}, got {kind!r}")
