"""VGGT's encoder: a DINOv2 ViT (L/14 with 4 registers in the release), the part Fin3R fine-tunes.

Tokens are [class, registers, patches]; the learned `pos_embed` (class + a square grid) is added
before the registers are inserted, interpolated bicubically (antialias, in fp32) to the image's
patch grid unless that grid is the stored square one. Only the normalized patch tokens are returned.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fin3r_lib.models.layers.block import Block
from fin3r_lib.models.layers.patch_embed import PatchEmbed


class DinoV2Encoder(nn.Module):
    """DINOv2 ViT with registers; `blocks.{i}.attn.qkv` is where the Fin3R adapter goes."""

    def __init__(
        self, image_size: int, patch_size: int, embed_dim: int, depth: int, num_heads: int, num_registers: int
    ) -> None:
        super().__init__()
        grid = image_size // patch_size
        self.patch_size = patch_size
        self.num_registers = num_registers
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, embed_dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, num_registers, embed_dim))
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim), requires_grad=False)  # unused at inference
        self.patch_embed = PatchEmbed(patch_size, 3, embed_dim)
        self.blocks = nn.ModuleList(
            [Block(embed_dim, num_heads, mlp_ratio=4.0, init_values=1.0, norm_eps=1e-6) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        nn.init.normal_(self.register_tokens, std=1e-6)

    def interpolated_pos_embed(self, grid_hw: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
        """pos_embed [1, 1 + gh*gw, C] for a gh x gw patch grid."""
        n = self.pos_embed.shape[1] - 1
        side = math.isqrt(n)
        if grid_hw == (side, side):
            return self.pos_embed.to(dtype)
        pos = self.pos_embed.float()
        patch_pos = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        patch_pos = F.interpolate(patch_pos, size=grid_hw, mode="bicubic", antialias=True)
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, grid_hw[0] * grid_hw[1], -1)
        return torch.cat([pos[:, :1], patch_pos], dim=1).to(dtype)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Normalized images [N, 3, H, W] -> normalized patch tokens [N, (H/p)*(W/p), C]."""
        n, _, h, w = images.shape
        x = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(n, -1, -1), x], dim=1)
        x = x + self.interpolated_pos_embed((h // self.patch_size, w // self.patch_size), x.dtype)
        x = torch.cat([x[:, :1], self.register_tokens.expand(n, -1, -1), x[:, 1:]], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 1 + self.num_registers :]
