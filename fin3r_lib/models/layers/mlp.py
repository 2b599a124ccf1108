"""Two-layer MLP with exact GELU (`fc1`, `fc2`), as in ViT / DINOv2 / CroCo."""

from __future__ import annotations

import torch
from torch import nn


class Mlp(nn.Module):
    """x -> fc2(gelu(fc1(x)))."""

    def __init__(self, dim: int, hidden: int, out_dim: int | None = None, bias: bool = True) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden, bias=bias)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, out_dim or dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))
