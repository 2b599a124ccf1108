"""The CroCo ViT encoder of CUT3R (images, and 6-channel ray maps): patch embedding + RoPE blocks + norm.

The released checkpoints keep the encoder's parts at the top level of the model (`patch_embed`,
`enc_blocks`, `enc_norm`; `patch_embed_ray_map`, `enc_blocks_ray_map`, `enc_norm_ray_map`), so
this module offers the parts and the function that runs them rather than one wrapping module.
"""

from __future__ import annotations

import torch
from torch import nn

from fin3r_lib.errors import InputError
from fin3r_lib.models.croco import CroCoConfig
from fin3r_lib.models.layers import Block, RoPE2D, grid_positions


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection (`proj`), no position embedding; returns tokens and (y, x) positions."""

    def __init__(self, in_chans: int, dim: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = x.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise InputError(f"CUT3R encoder: expected height and width multiples of {self.patch_size}, got {h}x{w}")
        x = self.proj(x)
        pos = grid_positions(x.shape[2], x.shape[3], device=x.device)
        return x.flatten(2).transpose(1, 2), pos.expand(x.shape[0], -1, -1)


def encoder_blocks(
    cfg: CroCoConfig, depth: int, rope: RoPE2D, rope_in_fp16: bool, heads: int | None = None
) -> nn.ModuleList:
    """`depth` CroCo blocks of the encoder width (qkv bias, LayerNorm eps 1e-6, 2D RoPE), `heads` heads
    (None: `cfg.enc_heads`)."""
    return nn.ModuleList(
        Block(
            cfg.enc_dim,
            heads or cfg.enc_heads,
            cfg.mlp_ratio,
            qkv_bias=True,
            norm_eps=cfg.norm_eps,
            rope=rope,
            rope_in_fp16=rope_in_fp16,
        )
        for _ in range(depth)
    )


def run_encoder(
    patch_embed: PatchEmbed, blocks: nn.ModuleList, norm: nn.LayerNorm, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (or ray maps) [B, C, H, W] -> normalized tokens [B, N, D] and positions [B, N, 2]."""
    tokens, pos = patch_embed(x)
    for blk in blocks:
        tokens = blk(tokens, pos)
    return norm(tokens), pos
