"""RoPE2D's cos/sin cache: every output equals recomputing (torch.equal), for the module alone and for
whole VGGT-tiny and CUT3R-tiny forwards; changed positions are never served stale tables; the cache
stays bounded; tables made under inference mode never reach an autograd forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fin3r_lib.models import build_model
from fin3r_lib.models.cut3r import CUT3R
from fin3r_lib.models.cut3r.config import CUT3R_TINY
from fin3r_lib.models.layers import rope as rope_module
from fin3r_lib.models.layers.rope import RoPE2D, grid_positions


def _fresh(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """The rotation from a new module (nothing cached: it computes its tables)."""
    return RoPE2D(100.0)(x, pos)


@pytest.fixture
def compute_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts how often cos/sin tables are computed rather than served from the cache."""
    calls = [0]
    compute = RoPE2D._compute_tables

    def counted(self, *args):
        calls[0] += 1
        return compute(self, *args)

    monkeypatch.setattr(RoPE2D, "_compute_tables", counted)
    return calls


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cached_rotation_equals_recomputing(dtype: torch.dtype, compute_calls: list[int]) -> None:
    gen = torch.Generator().manual_seed(0)
    rope = RoPE2D(100.0)
    x = torch.randn(2, 3, 12, 16, generator=gen).to(dtype)
    grid = grid_positions(3, 4)  # [12, 2]
    batched = torch.stack([grid, grid + 1])  # [2, 12, 2]
    for pos in (grid, batched, grid, batched, grid):
        assert torch.equal(rope(x, pos), _fresh(x, pos))
    assert compute_calls[0] == 2 + 5  # `rope`: once per position set (grid, batched); `_fresh`: every call


def test_changed_positions_of_the_same_shape_are_recomputed() -> None:
    gen = torch.Generator().manual_seed(1)
    rope = RoPE2D(100.0)
    x = torch.randn(1, 2, 12, 8, generator=gen)
    pos = grid_positions(3, 4)
    first = rope(x, pos)
    pos[0] = torch.tensor([-1, -1])  # in place: same tensor, same shape, new values
    moved = rope(x, pos)
    assert torch.equal(moved, _fresh(x, pos))
    assert not torch.equal(moved, first)
    assert torch.equal(rope(x, grid_positions(4, 3)), _fresh(x, grid_positions(4, 3)))  # same shape [12, 2]


def test_cache_is_bounded_and_stays_exact() -> None:
    gen = torch.Generator().manual_seed(2)
    rope = RoPE2D(100.0)
    x = torch.randn(1, 1, 6, 8, generator=gen)
    for n in range(1, 40):
        pos = grid_positions(2, 3, offset=n)
        assert torch.equal(rope(x, pos), _fresh(x, pos))
        assert torch.equal(rope(x[..., :4], pos), _fresh(x[..., :4], pos))  # another head dimension
    assert len(rope._tables) <= rope_module._CACHE_SIZE


def test_tables_cached_under_inference_mode_do_not_break_training() -> None:
    rope = RoPE2D(100.0)
    pos = grid_positions(3, 4)
    with torch.inference_mode():
        rope(torch.randn(1, 2, 12, 8), pos)
    x = torch.randn(1, 2, 12, 8, requires_grad=True)
    rope(x, pos).square().sum().backward()  # inference tensors saved for backward would raise here
    assert x.grad is not None and torch.isfinite(x.grad).all()


def _vggt_outputs() -> list[dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = build_model("vggt-tiny")
    rng = np.random.default_rng(0)
    images, _ = model.prepare([rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(2)])
    with torch.inference_mode():
        return [model(images) for _ in range(2)]


def _cut3r_outputs() -> list[dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = CUT3R(CUT3R_TINY).eval()
    image = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    outs, state = [], model.initial_state(1)
    with torch.inference_mode():
        for _ in range(3):
            out, state = model.step_tensor(image, state)
            outs.append(out)
    return outs


@pytest.mark.parametrize("run", [_vggt_outputs, _cut3r_outputs], ids=["vggt-tiny", "cut3r-tiny"])
def test_full_forward_equals_uncached(run, monkeypatch: pytest.MonkeyPatch, compute_calls: list[int]) -> None:
    cached = run()
    computed_cached = compute_calls[0]
    monkeypatch.setattr(rope_module, "_CACHE_SIZE", 0)  # every call recomputes its tables
    compute_calls[0] = 0
    uncached = run()
    assert compute_calls[0] > computed_cached  # the cache was really used in the first run
    for got, expected in zip(cached, uncached, strict=True):
        assert got.keys() == expected.keys()
        for key in expected:
            assert torch.equal(got[key], expected[key]), key
