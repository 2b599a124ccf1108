"""Multi-head self-attention with a fused `qkv` linear, optional qk-norm and 2D RoPE.

`qkv` is always called as a module, so the Fin3R adapter (a PEFT layer around it) takes effect.
Attention runs through `scaled_dot_product_attention`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fin3r_lib.models.layers.rope import RoPE2D


class Attention(nn.Module):
    """Self-attention: qkv -> (q_norm, k_norm) -> RoPE -> SDPA -> proj."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        qk_norm: bool = False,
        norm_eps: float = 1e-5,
        rope: RoPE2D | None = None,
        rope_in_fp16: bool = False,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"Attention: dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.q_norm = nn.LayerNorm(self.head_dim, eps=norm_eps) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim, eps=norm_eps) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        self.rope = rope
        #: CroCo/CUT3R quirk: q and k are cast to fp16 before RoPE, even in fp32 runs (the rotation itself
        #: is computed in fp32 and rounded to fp16, as the reference's CUDA RoPE kernel does)
        self.rope_in_fp16 = rope_in_fp16

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        if self.rope is not None and positions is not None:
            if self.rope_in_fp16:  # as the reference's CUDA kernel: round to fp16, rotate in fp32, round again
                q, k = q.half().float(), k.half().float()
            q, k = self.rope(q, positions), self.rope(k, positions)
            if self.rope_in_fp16:
                q, k = q.half().to(v.dtype), k.half().to(v.dtype)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))
