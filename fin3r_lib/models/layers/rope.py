"""2D rotary position embedding (CroCo / VGGT / CUT3R formula) and grid position helpers.

For head dimension d: the first d/2 channels encode the y coordinate, the last d/2 the x coordinate.
Within each half of width D = d/2, channel j is paired with j + D/2 and rotated by angle
pos * 1/base^(2j/D) (j < D/2). Positions may be negative (CUT3R's pose token sits at (-1, -1)).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

#: cos/sin tables kept per RoPE2D instance (a forward sees a few position sets: VGGT's frame and
#: global positions, CUT3R's image, pose-token and state positions)
_CACHE_SIZE = 8


def grid_positions(height: int, width: int, device: torch.device | str | None = None, offset: int = 0) -> torch.Tensor:
    """(y, x) integer positions of a height x width patch grid in row-major order, shape [H*W, 2]."""
    y, x = torch.meshgrid(torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij")
    return torch.stack([y.reshape(-1), x.reshape(-1)], dim=-1) + offset


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


class RoPE2D(nn.Module):
    """Applies 2D RoPE to q or k of shape [B, heads, N, d] given positions [B, N, 2] or [N, 2] (y, x).

    Holds no parameters or buffers (nothing in the state dict). The cos/sin tables of the last few
    position sets are cached, keyed by head dimension, dtype, device and inference mode, and matched
    on the position values themselves (a copy is kept and compared), so a hit returns exactly what
    recomputing would. Not cached while compiling.
    """

    def __init__(self, base: float = 100.0) -> None:
        super().__init__()
        self.base = float(base)
        self._tables: OrderedDict[tuple, tuple[torch.Tensor, ...]] = OrderedDict()

    def _cos_sin(self, pos: torch.Tensor, dim: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        inv_freq = 1.0 / (self.base ** (torch.arange(0, dim, 2, device=pos.device, dtype=torch.float32) / dim))
        angles = pos.to(torch.float32)[..., None] * inv_freq  # [..., N, dim/2]
        angles = torch.cat([angles, angles], dim=-1)
        return angles.cos().to(dtype), angles.sin().to(dtype)

    def _tables_for(self, positions: torch.Tensor, dim: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """(cos_y, sin_y, cos_x, sin_x) for `positions` [..., N, 2], shaped to broadcast over heads."""
        if torch.compiler.is_compiling():
            return self._compute_tables(positions, dim, dtype)
        key = (tuple(positions.shape), positions.dtype, positions.device, dim, dtype, torch.is_inference_mode_enabled())
        cached = self._tables.get(key)
        if cached is not None and torch.equal(cached[0], positions):
            self._tables.move_to_end(key)
            return cached[1:]
        tables = self._compute_tables(positions, dim, dtype)
        self._tables[key] = (positions.clone(), *tables)
        self._tables.move_to_end(key)
        while len(self._tables) > _CACHE_SIZE:
            self._tables.popitem(last=False)
        return tables

    def _compute_tables(self, positions: torch.Tensor, dim: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        tables: list[torch.Tensor] = []
        for axis in (0, 1):
            cos, sin = self._cos_sin(positions[..., axis], dim, dtype)
            if cos.dim() == 3:  # [B, N, D] -> broadcast over heads
                cos, sin = cos[:, None], sin[:, None]
            tables += [cos, sin]
        return tuple(tables)

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 4:
            raise ValueError(f"RoPE2D: head dimension must be a multiple of 4, got {x.shape[-1]}")
        cos_y, sin_y, cos_x, sin_x = self._tables_for(positions, x.shape[-1] // 2, x.dtype)
        y_part, x_part = x.chunk(2, dim=-1)
        return torch.cat(
            [y_part * cos_y + _rotate_half(y_part) * sin_y, x_part * cos_x + _rotate_half(x_part) * sin_x], -1
        )
