"""Pre-norm transformer block: x + ls1(attn(norm1(x))), then x + ls2(mlp(norm2(x)))."""

from __future__ import annotations

import torch
from torch import nn

from fin3r_lib.models.layers.attention import Attention
from fin3r_lib.models.layers.layer_scale import LayerScale
from fin3r_lib.models.layers.mlp import Mlp
from fin3r_lib.models.layers.rope import RoPE2D


class Block(nn.Module):
    """ViT block with optional LayerScale (`ls1`, `ls2`; omitted when `init_values` is None)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        ffn_bias: bool = True,
        init_values: float | None = None,
        qk_norm: bool = False,
        norm_eps: float = 1e-6,
        rope: RoPE2D | None = None,
        rope_in_fp16: bool = False,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, proj_bias, qk_norm, 1e-5, rope, rope_in_fp16)
        self.ls1 = LayerScale(dim, init_values) if init_values is not None else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), bias=ffn_bias)
        self.ls2 = LayerScale(dim, init_values) if init_values is not None else nn.Identity()

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), positions))
        return x + self.ls2(self.mlp(self.norm2(x)))
