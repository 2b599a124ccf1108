"""Applying the adapter to a backbone: placement, freezing, training step, disabling, parameter count."""

from __future__ import annotations

import copy

import pytest
import torch
from test_adapter_common import (
    VIT_L_LORA_PARAMS,
    ToyVGGT,
    fresh_adapter_rtol,
    lora_names,
    randomize_lora,
    toy_images,
    toy_model,
)

from fin3r_lib.adapter import (
    AdapterConfig,
    AdapterError,
    adapter_config,
    adapter_disabled,
    adapter_layers,
    apply_adapter,
)
from fin3r_lib.adapter.layer import is_renorm_layer
from fin3r_lib.models.base import ReconstructionModel

KINDS = ("vggt", "cut3r")


@pytest.mark.parametrize("kind", KINDS)
def test_only_encoder_qkv_wrapped(kind: str) -> None:
    model = apply_adapter(toy_model(kind, depth=3), rank=4, alpha=4.0)
    wrapped = sorted(n for n, m in model.named_modules() if is_renorm_layer(m, "default"))
    path = model.encoder_blocks_path
    assert wrapped == [f"{path}.{i}.attn.qkv" for i in range(3)]
    assert not is_renorm_layer(model.decoder.attn.qkv, "default")
    assert adapter_config(model) == AdapterConfig(4, 4.0)


@pytest.mark.parametrize("kind", KINDS)
def test_only_lora_trainable(kind: str) -> None:
    model = apply_adapter(toy_model(kind))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == lora_names(model)
    assert len(trainable) == 2 * len(model.encoder_blocks())


def test_vit_l_encoder_trainable_count_on_meta() -> None:
    with torch.device("meta"):
        model = ToyVGGT(dim=1024, heads=16, depth=24)
    apply_adapter(model)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == VIT_L_LORA_PARAMS


@pytest.mark.parametrize("kind", KINDS)
def test_fresh_adapter_keeps_outputs(kind: str) -> None:
    base = toy_model(kind).requires_grad_(False)  # frozen like the adapted one (see test_disabled_...)
    model = apply_adapter(copy.deepcopy(base))
    images = toy_images()
    with torch.no_grad():
        want, got = base(images), model(images)
        qkv0 = base.encoder_blocks()[0].attn.qkv(torch.randn(4, 32))
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=50 * fresh_adapter_rtol(qkv0), atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_disabled_adapter_gives_base_bit_exact(kind: str) -> None:
    # Frozen reference: torch's F.linear on a non-contiguous input rounds differently depending on
    # whether the weight requires grad, so compare against the base frozen the same way.
    base = toy_model(kind).requires_grad_(False)
    model = apply_adapter(copy.deepcopy(base))
    randomize_lora(model)
    images = toy_images()
    with torch.no_grad():
        want = base(images)
        adapted = model(images)
        with adapter_disabled(model):
            off = model(images)
        again = model(images)
    for key in want:
        assert torch.equal(off[key], want[key]), key
        assert torch.equal(again[key], adapted[key]), key
    assert not torch.equal(adapted["tokens"], want["tokens"])
    assert {n for n, p in model.named_parameters() if p.requires_grad} == lora_names(model)


@pytest.mark.parametrize("kind", KINDS)
def test_one_step_changes_only_lora(kind: str) -> None:
    model = apply_adapter(toy_model(kind))
    randomize_lora(model, std=0.1)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # every parameter handed to the optimizer, with weight decay: frozen ones must still not move
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    out = model(toy_images())
    loss = out["out"].square().mean() + out["tokens"].square().mean()
    loss.backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None}
    assert grads == lora_names(model)
    optimizer.step()
    after = model.state_dict()
    assert after.keys() == before.keys()
    for key, tensor in after.items():
        if ".lora_" in key:
            assert not torch.equal(tensor, before[key]), f"{key} did not train"
        else:
            assert torch.equal(tensor, before[key]), f"{key} changed"


def test_apply_twice_refused() -> None:
    model = apply_adapter(toy_model("vggt"))
    with pytest.raises(AdapterError, match="already has an adapter"):
        apply_adapter(model)


def test_model_without_encoder_path_refused() -> None:
    class NoPath(ToyVGGT):
        encoder_blocks_path = ""

    with pytest.raises(AdapterError, match="declares no encoder_blocks_path"):
        apply_adapter(NoPath())


def test_block_without_qkv_linear_refused() -> None:
    model = toy_model("cut3r")
    model.enc_blocks[1].attn.qkv = torch.nn.Identity()
    with pytest.raises(AdapterError, match=r"encoder block 1 at enc_blocks: expected an `attn.qkv` nn.Linear"):
        apply_adapter(model)


def test_no_adapter_reports_none() -> None:
    model: ReconstructionModel = toy_model("vggt")
    assert adapter_config(model) is None and adapter_layers(model) == []
    with adapter_disabled(model):  # a no-op without adapter
        pass
