"""The adapter on the registry backbones (VGGT, CUT3R, DUSt3R, MASt3R): tiny (full forward), full size (meta)."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
import torch
from test_adapter_common import VIT_L_LORA_PARAMS, authors_wrapped, randomize_lora

from fin3r_lib.adapter import (
    AdapterConfig,
    adapter_config,
    adapter_disabled,
    apply_adapter,
    save_adapter,
)
from fin3r_lib.adapter.layer import is_renorm_layer
from fin3r_lib.models import build_model
from fin3r_lib.models.base import ReconstructionModel

#: tiny variants and a model-grid input size each accepts (multiples of their patch sizes)
TINY = {"vggt-tiny": (28, 42), "cut3r-tiny": (32, 48), "dust3r-tiny": (32, 48), "mast3r-tiny": (32, 48)}


def _images(name: str, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 2, 3, *TINY[name], generator=torch.Generator().manual_seed(seed))


def _frozen_tiny(name: str) -> ReconstructionModel:
    # frozen like an adapted model: torch's F.linear on a non-contiguous input rounds differently
    # depending on whether the weight requires grad
    torch.manual_seed(0)
    return build_model(name).requires_grad_(False)


def _assert_outputs(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor], **tol: float) -> None:
    assert got.keys() == want.keys()
    for key in want:
        if tol:
            torch.testing.assert_close(got[key], want[key], equal_nan=True, **tol, msg=lambda m, k=key: f"{k}: {m}")
        else:
            assert torch.equal(got[key].nan_to_num(), want[key].nan_to_num()), key


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("vggt-1b", "aggregator.patch_embed.blocks"),
        ("cut3r-512-dpt", "enc_blocks"),
        ("dust3r-512-dpt", "enc_blocks"),
        ("mast3r-512", "enc_blocks"),
    ],
)
def test_full_size_encoder_on_meta(name: str, path: str) -> None:
    model = apply_adapter(build_model(name, device="meta"))
    assert model.encoder_blocks_path == path
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == VIT_L_LORA_PARAMS
    wrapped = sorted((n for n, m in model.named_modules() if is_renorm_layer(m, "default")), key=len)
    assert sorted(wrapped) == sorted(f"{path}.{i}.attn.qkv" for i in range(24))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(n.startswith(f"{path}.") and ".attn.qkv.lora_" in n for n in trainable)


@pytest.mark.parametrize("name", TINY)
def test_tiny_fresh_disabled_and_trained(name: str) -> None:
    base = _frozen_tiny(name)
    model = apply_adapter(copy.deepcopy(base))
    images = _images(name)
    with torch.no_grad():
        want = base(images)
        # fresh: identity up to the formula's 1e-6 (relative 1e-7 per qkv), grown by the random-weight heads
        _assert_outputs(model(images), want, rtol=1e-4, atol=1e-5)
        randomize_lora(model, std=0.2)
        adapted = model(images)
        with adapter_disabled(model):
            _assert_outputs(model(images), want)  # disabled: bit-exact
    assert not torch.allclose(adapted["depth"], want["depth"], atol=1e-4)


@pytest.mark.parametrize("name", TINY)
def test_tiny_one_step_changes_only_lora(name: str) -> None:
    torch.manual_seed(0)
    model = apply_adapter(build_model(name))
    randomize_lora(model, std=0.05)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    pred = model(_images(name))
    (pred["depth"].mean() + pred["world_points"].square().mean()).backward()
    assert {n for n, p in model.named_parameters() if p.grad is not None} == {
        n for n, p in model.named_parameters() if ".lora_" in n
    }
    optimizer.step()
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {k for k in before if ".lora_" in k}


@pytest.mark.parametrize("name", TINY)
def test_tiny_authors_file_and_build_model(tmp_path: Path, name: str) -> None:
    """`build_model(name, checkpoint, adapter=...)` with a file in the authors' layout (the whole wrapped
    state dict, made with PEFT), then with our own file saved from it."""
    base = _frozen_tiny(name)
    torch.save(base.state_dict(), tmp_path / "base.pt")
    original = authors_wrapped(base)
    torch.save(original.state_dict(), tmp_path / "authors.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the file's base tensors equal the checkpoint's: no warning
        loaded = build_model(name, tmp_path / "base.pt", adapter=tmp_path / "authors.pth")
    assert adapter_config(loaded) == AdapterConfig()
    images = _images(name)
    with torch.no_grad():
        want = original(images)
        _assert_outputs(loaded(images), want, rtol=1e-4, atol=1e-5)

    ours = save_adapter(loaded, tmp_path / "ours.safetensors")
    again = build_model(name, tmp_path / "base.pt", adapter=ours)
    with torch.no_grad():
        _assert_outputs(again(images), loaded(images))
