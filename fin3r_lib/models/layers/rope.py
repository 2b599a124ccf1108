"""2D rotary position embedding (CroCo / VGGT / CUT3R formula) and grid position helpers.

For head dimension d: the first d/2 channels encode the y coordinate, the last d/2 the x coordinate.
Within each half of width D = d/2, channel j is paired with j + D/2 and rotated by angle
pos * 1/base^(2j/D) (j < D/2). Positions may be negative (CUT3R's pose token sits at (-1, -1)).
"""

from __future__ import annotations

import torch
from torch import nn


def grid_positions(height: int, width: int, device: torch.device | str | None = None, offset: int = 0) -> torch.Tensor:
    """(y, x) integer positions of a height x width patch grid in row-major order, shape [H*W, 2]."""
    y, x = torch.meshgrid(torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij")
    return torch.stack([y.reshape(-1), x.reshape(-1)], dim=-1) + offset


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


class RoPE2D(nn.Module):
    """Applies 2D RoPE to q or k of shape [B, heads, N, d] given positions [B, N, 2] or [N, 2] (y, x).

    Holds no parameters or buffers (nothing in the state dict); frequencies are computed per call.
    """

    def __init__(self, base: float = 100.0) -> None:
        super().__init__()
        self.base = float(base)

    def _cos_sin(self, pos: torch.Tensor, dim: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        inv_freq = 1.0 / (self.base ** (torch.arange(0, dim, 2, device=pos.device, dtype=torch.float32) / dim))
        angles = pos.to(torch.float32)[..., None] * inv_freq  # [..., N, dim/2]
        angles = torch.cat([angles, angles], dim=-1)
        return angles.cos().to(dtype), angles.sin().to(dtype)

    def _rotate_1d(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        cos, sin = self._cos_sin(pos, x.shape[-1], x.dtype)
        if cos.dim() == 3:  # [B, N, D] -> broadcast over heads
            cos, sin = cos[:, None], sin[:, None]
        return x * cos + _rotate_half(x) * sin

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 4:
            raise ValueError(f"RoPE2D: head dimension must be a multiple of 4, got {x.shape[-1]}")
        y_part, x_part = x.chunk(2, dim=-1)
        return torch.cat(
            [self._rotate_1d(y_part, positions[..., 0]), self._rotate_1d(x_part, positions[..., 1])], dim=-1
        )
