"""Convolutional patch embedding (`proj`: a conv with kernel = stride = patch size), as in ViT / CroCo."""

from __future__ import annotations

import torch
from torch import nn

from fin3r_lib.errors import InputError


class PatchEmbed(nn.Module):
    """Images [N, C, H, W] -> patch tokens [N, (H/p)*(W/p), dim], row-major over the patch grid."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise InputError(f"PatchEmbed: expected image sides that are multiples of {self.patch_size}, got {h}x{w}")
        return self.proj(x).flatten(2).transpose(1, 2)
