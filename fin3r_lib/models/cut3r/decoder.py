"""CroCo decoder blocks used by CUT3R's paired image/state decoders and by its pose memory.

A block updates x from itself (self-attention) and from a second token set y (cross-attention):
x += attn(norm1(x)); x += cross_attn(norm2(x), norm_y(y)); x += mlp(norm3(x)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fin3r_lib.models.layers import Attention, Mlp, RoPE2D


class CrossAttention(nn.Module):
    """Multi-head cross-attention with separate `projq`, `projk`, `projv` and 2D RoPE on q and k."""

    def __init__(self, dim: int, num_heads: int, rope: RoPE2D | None = None) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"CrossAttention: dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.projq = nn.Linear(dim, dim)
        self.projk = nn.Linear(dim, dim)
        self.projv = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.rope = rope

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def forward(
        self, query: torch.Tensor, memory: torch.Tensor, qpos: torch.Tensor | None, kpos: torch.Tensor | None
    ) -> torch.Tensor:
        q, k, v = self._heads(self.projq(query)), self._heads(self.projk(memory)), self._heads(self.projv(memory))
        if self.rope is not None and qpos is not None:
            q = self.rope(q, qpos)
        if self.rope is not None and kpos is not None:
            k = self.rope(k, kpos)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(query.shape))


class DecoderBlock(nn.Module):
    """Self-attention, cross-attention to a normalized second token set, MLP; all pre-norm residuals."""

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float = 4.0, norm_eps: float = 1e-6, rope: RoPE2D | None = None
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=True, rope=rope)
        self.cross_attn = CrossAttention(dim, num_heads, rope=rope)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.norm3 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.norm_y = nn.LayerNorm(dim, eps=norm_eps)

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        xpos: torch.Tensor | None = None,
        ypos: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), xpos)
        x = x + self.cross_attn(self.norm2(x), self.norm_y(y), xpos, ypos)
        return x + self.mlp(self.norm3(x))
