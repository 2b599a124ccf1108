"""Per-channel learned residual scaling (`gamma`), as in DINOv2 / VGGT."""

from __future__ import annotations

import torch
from torch import nn


class LayerScale(nn.Module):
    """x -> x * gamma."""

    def __init__(self, dim: int, init_value: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma
