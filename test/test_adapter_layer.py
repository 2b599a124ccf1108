"""The re-normalized LoRA layer on one fused qkv linear: the formula, norms, identity, disable, cost."""

from __future__ import annotations

import math

import pytest
import torch
from peft import LoraConfig
from peft.tuners.lora.layer import Linear as LoraLinear
from test_adapter_common import fresh_adapter_rtol, reference_renorm_qkv
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fin3r_lib.adapter import AdapterConfig, AdapterError, ReNormQkvVariant
from fin3r_lib.adapter.inject import inject_renorm_lora, lora_config


class _Host(nn.Module):
    """A module holding one fused qkv linear, the smallest thing PEFT can inject into."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.qkv(x)


def _adapted(dim: int = 16, rank: int = 4, alpha: float = 8.0, seed: int = 0) -> tuple[_Host, LoraLinear]:
    torch.manual_seed(seed)
    host = _Host(dim)
    assert inject_renorm_lora(host, AdapterConfig(rank, alpha), "qkv") == [host.qkv]
    assert type(host.qkv) is LoraLinear  # PEFT's own layer; only its variant is ours
    assert isinstance(host.qkv.lora_variant["default"], ReNormQkvVariant)
    return host, host.qkv


def _randomize(layer: LoraLinear, seed: int = 3) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in (layer.lora_A["default"].weight, layer.lora_B["default"].weight):
            p.copy_(torch.randn(p.shape, generator=gen))


def test_hand_computed_example() -> None:
    """dim 2, rank 1, alpha 2 (scale 2), x = (1, 0): every number below is worked out by hand."""
    host, layer = _adapted(dim=2, rank=1, alpha=2.0)
    host.double()
    with torch.no_grad():
        layer.base_layer.weight.copy_(torch.tensor([[3.0, 0], [0, 0], [0, 0], [4, 0], [1, 0], [1, 0]]))
        layer.base_layer.bias.zero_()
        layer.lora_A["default"].weight.copy_(torch.tensor([[1.0, 0.0]]))
        layer.lora_B["default"].weight.copy_(torch.tensor([[0.0], [2.0], [1.5], [-2.0], [0.0], [0.0]]))
        out = host(torch.tensor([[1.0, 0.0]], dtype=torch.float64))[0]
    # o0 = (3, 0 | 0, 4 | 1, 1); scale * B(A x) = 2 * (0, 2 | 1.5, -2 | 0, 0) = (0, 4 | 3, -4 | 0, 0)
    # q = (3, 4), |q| = 5, |q0| = 3 -> (1.8, 2.4); k = (3, 0), |k| = 3, |k0| = 4 -> (4, 0); v = v0 = (1, 1)
    expected = torch.tensor([1.8, 2.4, 4.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(out, expected, rtol=0, atol=2e-6)  # the 1e-6 in the denominator
    assert out[0].item() == pytest.approx(9 / (5 + 1e-6), abs=1e-15)
    assert out[4].item() == pytest.approx(math.sqrt(2) / (math.sqrt(2) + 1e-6), abs=1e-15)


def test_matches_independent_formula() -> None:
    host, layer = _adapted(dim=24, rank=3, alpha=6.0)
    _randomize(layer)
    x = torch.randn(2, 7, 24)
    with torch.no_grad():
        out = host(x)
    ref = reference_renorm_qkv(
        x, layer.base_layer.weight, layer.base_layer.bias, layer.lora_A["default"].weight,
        layer.lora_B["default"].weight, scale=2.0,
    )  # fmt: skip
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-6)


def test_norms_kept_directions_turned() -> None:
    host, layer = _adapted(dim=32, rank=8, alpha=8.0)
    _randomize(layer)
    x = torch.randn(3, 11, 32)
    with torch.no_grad():
        out = host(x).unflatten(-1, (3, 32))
        base = layer.base_layer(x).unflatten(-1, (3, 32))
    torch.testing.assert_close(out.norm(dim=-1), base.norm(dim=-1), rtol=1e-5, atol=1e-5)
    cosine = nn.functional.cosine_similarity(out, base, dim=-1)
    assert cosine.max() < 0.99, "the adapter should turn q, k and v"


def test_fresh_adapter_is_identity_up_to_eps() -> None:
    host, layer = _adapted(dim=32, rank=8, alpha=8.0)
    assert torch.count_nonzero(layer.lora_B["default"].weight) == 0
    assert torch.count_nonzero(layer.lora_A["default"].weight) == layer.lora_A["default"].weight.numel()
    x = torch.randn(2, 9, 32)
    with torch.no_grad():
        out, base = host(x), layer.base_layer(x)
    # B = 0 gives o = o0 exactly; the published 1e-6 in ||q|| + 1e-6 leaves a relative change of at most
    # 1e-6 / ||q0|| (bit-exact wherever ||q0|| >= 32, where fp32 rounds ||q0|| + 1e-6 back to ||q0||)
    torch.testing.assert_close(out, base, rtol=fresh_adapter_rtol(base), atol=0)


def test_disabled_is_base_bit_exact() -> None:
    host, layer = _adapted()
    _randomize(layer)
    x = torch.randn(2, 5, 16)
    layer.enable_adapters(False)
    with torch.no_grad():
        assert torch.equal(host(x), layer.base_layer(x))
    layer.enable_adapters(True)
    with torch.no_grad():
        assert not torch.equal(host(x), layer.base_layer(x))


def test_released_dropout_configured_never_applied_and_no_lora_bias() -> None:
    """The release configures lora_dropout 0.1 but its forward never applies it: in train mode the output
    equals the eval-mode output and the formula, although PEFT's dropout module is live (it would change x)."""
    host, layer = _adapted()
    _randomize(layer)
    dropout = layer.lora_dropout["default"]
    assert isinstance(dropout, nn.Dropout) and dropout.p == 0.1
    x = torch.randn(4, 6, 16)
    host.eval()
    with torch.no_grad():
        eval_out = host(x)
    host.train()
    assert dropout.training
    with torch.no_grad():
        assert not torch.equal(dropout(x), x)  # the module would drop 10% of the inputs if it were applied
        assert torch.equal(host(x), eval_out)
        assert torch.equal(host(x), host(x))
    ref = reference_renorm_qkv(
        x, layer.base_layer.weight, layer.base_layer.bias, layer.lora_A["default"].weight,
        layer.lora_B["default"].weight, scale=2.0,
    )  # fmt: skip
    torch.testing.assert_close(eval_out.double(), ref, rtol=1e-5, atol=1e-6)
    assert layer.lora_A["default"].bias is None and layer.lora_B["default"].bias is None


def test_extra_cost_is_two_rank_r_matmuls() -> None:
    """FLOPs of the adapted layer = base linear + A (r x dim) + B (3dim x r): no other matmul.

    Counted on the autograd path (the counter does not see the in-place `addmm_` of the no-grad path,
    which runs the same two products)."""
    dim, rank, tokens = 64, 8, 50
    host, _ = _adapted(dim=dim, rank=rank)
    x = torch.randn(1, tokens, dim)
    counter = FlopCounterMode(display=False)
    with counter:
        host(x)
    base_flops = 2 * tokens * dim * 3 * dim
    lora_flops = 2 * tokens * rank * dim + 2 * tokens * 3 * dim * rank
    assert counter.get_total_flops() == base_flops + lora_flops


def test_no_grad_path_matches_autograd_path() -> None:
    """Without autograd the layer updates the base output in place; same numbers as the autograd path."""
    host, layer = _adapted(dim=32, rank=8)
    _randomize(layer)
    x = torch.randn(2, 7, 32)
    with_grad = host(x)
    assert with_grad.requires_grad
    with torch.no_grad():
        without = host(x)
    with torch.inference_mode():
        inference = host(x)
    torch.testing.assert_close(without, with_grad.detach(), rtol=1e-6, atol=1e-7)
    assert torch.equal(without, inference)


def test_merge_refused() -> None:
    _, layer = _adapted()
    with pytest.raises(AdapterError, match="cannot be merged"):
        layer.merge()


def test_mixed_adapter_batches_per_sample() -> None:
    """PEFT's `adapter_names` batches go through the variant per sub-batch: '__base__' rows are the base output
    bit-exactly, 'default' rows the adapted output (the re-normalization is per token)."""
    host, layer = _adapted()
    _randomize(layer)
    x = torch.randn(3, 5, 16)
    with torch.no_grad():
        adapted, base = host(x), layer.base_layer(x)
        mixed = layer(x, adapter_names=["default", "__base__", "default"])
    assert torch.equal(mixed[1], base[1])
    torch.testing.assert_close(mixed[[0, 2]], adapted[[0, 2]], rtol=1e-6, atol=1e-7)
    assert not torch.allclose(mixed[0], base[0], atol=1e-3)


def test_two_active_adapters_refused() -> None:
    _, layer = _adapted()
    layer.update_layer("second", 4, 8.0, config=lora_config(AdapterConfig(4, 8.0), "qkv"))
    layer.lora_variant["second"] = ReNormQkvVariant()
    layer.set_adapter(["default", "second"])
    with pytest.raises(AdapterError, match="one active adapter at a time"):
        layer(torch.randn(2, 3, 16))


def test_only_fused_qkv_accepted() -> None:
    host = nn.Module()
    host.qkv = nn.Linear(16, 32)
    with pytest.raises(AdapterError, match=r"expected a fused qkv linear \(dim -> 3\*dim\), got 16 -> 32"):
        inject_renorm_lora(host, AdapterConfig(), "qkv")
    assert type(host.qkv) is nn.Linear  # refused before anything changed


@pytest.mark.parametrize(("rank", "alpha"), [(0, 8.0), (2.5, 8.0), (True, 8.0), (8, 0.0), (8, -1.0), (8, "8")])
def test_config_rejects_bad_settings(rank: object, alpha: object) -> None:
    with pytest.raises(AdapterError, match="expected a positive"):
        AdapterConfig(rank, alpha)  # type: ignore[arg-type]


def test_config_defaults_are_the_release() -> None:
    config = AdapterConfig()
    assert (config.rank, config.alpha, config.scale) == (8, 8.0, 1.0)


def test_peft_lora_config_settings() -> None:
    lora = lora_config(AdapterConfig(4, 16.0), "qkv")
    assert isinstance(lora, LoraConfig)
    assert (lora.r, lora.lora_alpha, lora.bias, lora.init_lora_weights) == (4, 16.0, "none", True)
    assert lora.lora_dropout == 0.1  # the release's value (never applied)
    assert lora._custom_modules is None  # plain PEFT layers; no private custom-module registration
