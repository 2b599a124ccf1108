"""The attention modules' `scaled_dot_product_attention` against softmax(q k^T / sqrt(d)) v written out.

Shapes are the full models' (head dim 64 and 48, VGGT with qk-norm and special tokens at (0, 0), CUT3R's
encoder with its fp16 RoPE rounding, its decoder with the pose token at (-1, -1) and cross-attention to
the state tokens). The attention output is caught at the input of `proj`; q, k, v are rebuilt from
the module's own weights, and RoPE through the module's RoPE2D (checked against its formula in
test_vggt_parts.py), so only the attention itself is under test.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from fin3r_lib.models.cut3r.decoder import CrossAttention
from fin3r_lib.models.layers import Attention, RoPE2D, grid_positions


def _written_out(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v in float64, [B, heads, N, d] -> [B, N, heads * d]."""
    q, k, v = q.double(), k.double(), v.double()
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
    out = weights @ v
    return out.transpose(1, 2).reshape(out.shape[0], out.shape[2], -1)


def _proj_input(module: torch.nn.Module, *args: torch.Tensor) -> torch.Tensor:
    caught = []
    handle = module.proj.register_forward_pre_hook(lambda _m, inputs: caught.append(inputs[0]))
    try:
        with torch.no_grad():
            module(*args)
    finally:
        handle.remove()
    return caught[0]


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, c = x.shape
    return x.reshape(b, n, heads, c // heads).transpose(1, 2)


def _positions(grid: tuple[int, int], special: int, special_pos: int, offset: int) -> torch.Tensor:
    patches = grid_positions(*grid, offset=offset)
    return torch.cat([torch.full((special, 2), special_pos, dtype=patches.dtype), patches])[None]


@pytest.mark.parametrize(
    ("dim", "heads", "qk_norm", "rope_in_fp16", "grid", "special", "special_pos", "offset"),
    [
        (1024, 16, True, False, (28, 37), 5, 0, 1),  # VGGT frame attention at 518x392
        (1024, 16, False, True, (24, 32), 0, 0, 0),  # CUT3R encoder at 512x384
        (768, 12, False, False, (24, 32), 1, -1, 0),  # CUT3R decoder self-attention, pose token first
        (768, 16, False, False, (28, 28), 0, 0, 0),  # CUT3R state decoder (head dim 48), 768 state tokens
    ],
)
def test_self_attention_equals_written_out_softmax(
    dim: int, heads: int, qk_norm: bool, rope_in_fp16: bool, grid: tuple, special: int, special_pos: int, offset: int
) -> None:
    torch.manual_seed(0)
    module = Attention(dim, heads, qk_norm=qk_norm, rope=RoPE2D(100.0), rope_in_fp16=rope_in_fp16).eval()
    if qk_norm:  # non-trivial norm affine so a q/k mix-up cannot hide
        for norm in (module.q_norm, module.k_norm):
            torch.nn.init.normal_(norm.weight, 1.0, 0.2)
    pos = _positions(grid, special, special_pos, offset)
    x = torch.randn(1, pos.shape[1], dim)
    got = _proj_input(module, x, pos)
    with torch.no_grad():
        q, k, v = F.linear(x, module.qkv.weight, module.qkv.bias).chunk(3, dim=-1)
        q, k, v = _heads(q, heads), _heads(k, heads), _heads(v, heads)
        if qk_norm:
            q = F.layer_norm(q, (dim // heads,), module.q_norm.weight, module.q_norm.bias, 1e-5)
            k = F.layer_norm(k, (dim // heads,), module.k_norm.weight, module.k_norm.bias, 1e-5)
        if rope_in_fp16:
            q, k = q.half().float(), k.half().float()
        q, k = module.rope(q, pos), module.rope(k, pos)
        if rope_in_fp16:
            q, k = q.half().float(), k.half().float()
    expected = _written_out(q, k, v)
    assert got.shape == expected.shape
    assert torch.allclose(got.double(), expected, rtol=0, atol=1e-6)
    assert float(expected.std()) > 0.01  # not a degenerate near-zero output


def test_cross_attention_equals_written_out_softmax() -> None:
    torch.manual_seed(1)
    dim, heads = 768, 12  # CUT3R decoder: image tokens (pose token first) attend to the 768 state tokens
    module = CrossAttention(dim, heads, rope=RoPE2D(100.0)).eval()
    qpos = _positions((24, 32), 1, -1, 0)
    kpos = _positions((28, 28), 0, 0, 0)[:, :768]
    query, memory = torch.randn(1, qpos.shape[1], dim), torch.randn(1, 768, dim)
    got = _proj_input(module, query, memory, qpos, kpos)
    with torch.no_grad():
        q = module.rope(_heads(F.linear(query, module.projq.weight, module.projq.bias), heads), qpos)
        k = module.rope(_heads(F.linear(memory, module.projk.weight, module.projk.bias), heads), kpos)
        v = _heads(F.linear(memory, module.projv.weight, module.projv.bias), heads)
    expected = _written_out(q, k, v)
    assert got.shape == expected.shape == (1, qpos.shape[1], dim)
    assert torch.allclose(got.double(), expected, rtol=0, atol=1e-6)
    assert float(expected.std()) > 0.01
