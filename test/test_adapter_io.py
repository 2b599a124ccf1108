"""Adapter files: our safetensors round trip, the authors' PEFT-wrapped layout, and the error cases."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from test_adapter_common import authors_wrapped, randomize_lora, toy_images, toy_model

from fin3r_lib.adapter import (
    AdapterConfig,
    AdapterError,
    adapter_config,
    apply_adapter,
    load_adapter,
    read_adapter_file,
    save_adapter,
)


def _lora_only(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if ".lora_" in k}


@pytest.fixture(params=["vggt", "cut3r"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.parametrize("layout", ["lora-only", "full-wrapped"])
def test_authors_file_matches_peft_original(tmp_path: Path, kind: str, layout: str) -> None:
    base = toy_model(kind)
    original = authors_wrapped(base)
    state = original.state_dict()
    if kind == "vggt":
        assert "aggregator.patch_embed.blocks.0.attn.base_model.model.qkv.lora_A.default.weight" in state
        assert "aggregator.patch_embed.blocks.0.attn.base_model.model.qkv.base_layer.weight" in state
        assert "aggregator.patch_embed.blocks.0.attn.base_model.model.proj.weight" in state
    path = tmp_path / "lora.pth"
    torch.save(_lora_only(state) if layout == "lora-only" else state, path)

    model = load_adapter(toy_model(kind), path)
    assert adapter_config(model) == AdapterConfig(8, 8.0)
    images = toy_images()
    with torch.no_grad():
        want, got = original(images), model(images)
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        assert not torch.allclose(got["tokens"], base(images)["tokens"], atol=1e-3)


def test_authors_file_with_other_base_weights_warns(tmp_path: Path) -> None:
    state = authors_wrapped(toy_model("vggt")).state_dict()
    key = "aggregator.patch_embed.blocks.1.attn.base_model.model.proj.weight"
    state[key] = state[key] + 0.25
    path = tmp_path / "lora.pth"
    torch.save(state, path)
    with pytest.warns(
        UserWarning, match=r"1 base tensors differ .*max abs difference 0\.25 in .*blocks\.1\.attn\.proj"
    ):
        load_adapter(toy_model("vggt"), path)


def test_authors_file_with_same_base_is_silent(tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    path = tmp_path / "lora.pth"
    torch.save(authors_wrapped(toy_model("vggt")).state_dict(), path)
    load_adapter(toy_model("vggt"), path)
    assert not [w for w in recwarn if "base tensors differ" in str(w.message)]


def test_save_load_round_trip_bit_exact(tmp_path: Path, kind: str) -> None:
    model = apply_adapter(toy_model(kind), rank=4, alpha=6.0)
    randomize_lora(model)
    path = save_adapter(model, tmp_path / "adapter.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        keys = sorted(f.keys())
    path_prefix = model.encoder_blocks_path
    assert meta == {
        "format": "fin3r-adapter",
        "format_version": "1",
        "base_model": f"toy-{kind}",
        "rank": "4",
        "alpha": "6.0",
        "target_modules": meta["target_modules"],
        "num_blocks": "2",
    }
    assert meta["target_modules"].startswith(path_prefix.split(".")[0])
    assert keys == sorted(f"{path_prefix}.{i}.attn.qkv.lora_{ab}.weight" for i in range(2) for ab in "AB")
    assert path.stat().st_size < 64 * 1024

    loaded = load_adapter(toy_model(kind), path)
    assert adapter_config(loaded) == AdapterConfig(4, 6.0)
    want, got = model.state_dict(), loaded.state_dict()
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)
    images = toy_images()
    with torch.no_grad():
        assert torch.equal(model(images)["out"], loaded(images)["out"])


def test_load_into_model_with_applied_adapter(tmp_path: Path) -> None:
    model = apply_adapter(toy_model("vggt"))
    randomize_lora(model)
    path = save_adapter(model, tmp_path / "a.safetensors")
    target = apply_adapter(toy_model("vggt"))
    load_adapter(target, path)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in target.state_dict().items())


def test_file_of_vit_l_size_is_a_few_mb(tmp_path: Path) -> None:
    model = apply_adapter(toy_model("vggt", dim=1024, heads=16, depth=24))
    path = save_adapter(model, tmp_path / "vit_l.safetensors")
    assert 3_000_000 < path.stat().st_size < 3_300_000  # 786,432 fp32 values = 3.0 MiB, plus header


# --- error cases -------------------------------------------------------------------------------------


def _authors_file(tmp_path: Path, kind: str = "vggt", **model_kwargs: int) -> Path:
    path = tmp_path / f"{kind}_lora.pth"
    torch.save(_lora_only(authors_wrapped(toy_model(kind, **model_kwargs)).state_dict()), path)
    return path


def test_wrong_rank_refused(tmp_path: Path) -> None:
    model = apply_adapter(toy_model("vggt"), rank=4, alpha=8.0)
    with pytest.raises(AdapterError, match=r"rank 8, alpha 8.0 does not match .* \(rank 4, alpha 8.0\)"):
        load_adapter(model, _authors_file(tmp_path))


def test_mixed_ranks_refused(tmp_path: Path) -> None:
    state = torch.load(_authors_file(tmp_path))
    prefix = "aggregator.patch_embed.blocks.1.attn.base_model.model.qkv"
    state[f"{prefix}.lora_A.default.weight"] = torch.zeros(4, 32)
    state[f"{prefix}.lora_B.default.weight"] = torch.zeros(96, 4)
    torch.save(state, tmp_path / "mixed.pth")
    with pytest.raises(AdapterError, match=r"expected one LoRA rank in every block, got ranks \[4, 8\]"):
        load_adapter(toy_model("vggt"), tmp_path / "mixed.pth")


def test_missing_blocks_refused(tmp_path: Path) -> None:
    state = {k: v for k, v in torch.load(_authors_file(tmp_path)).items() if ".blocks.1." not in k}
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(AdapterError, match=r"missing blocks \[1\]"):
        load_adapter(toy_model("vggt"), tmp_path / "partial.pth")


def test_extra_blocks_refused(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match=r"\(2 encoder blocks\): missing blocks \[\], blocks the model does not"):
        load_adapter(toy_model("vggt"), _authors_file(tmp_path, depth=3))


def test_block_missing_lora_b_refused(tmp_path: Path) -> None:
    state = {k: v for k, v in torch.load(_authors_file(tmp_path)).items() if not k.endswith("lora_B.default.weight")}
    torch.save(state, tmp_path / "half.pth")
    with pytest.raises(AdapterError, match=r"block 0 needs a 2-D lora_A and lora_B, got \['A'\]"):
        load_adapter(toy_model("vggt"), tmp_path / "half.pth")


def test_file_for_another_model_refused(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match=r"is for another model: its LoRA sits on 'enc_blocks.<i>.attn.qkv'"):
        load_adapter(toy_model("vggt"), _authors_file(tmp_path, kind="cut3r"))
    assert adapter_config(toy_model("vggt")) is None


def test_other_width_refused(tmp_path: Path) -> None:
    path = _authors_file(tmp_path, dim=48, heads=4)
    with pytest.raises(AdapterError, match=r"\(width 32\): block 0 has lora_A \(8, 48\)"):
        load_adapter(toy_model("vggt"), path)


def test_our_file_for_other_base_model_refused(tmp_path: Path) -> None:
    path = save_adapter(apply_adapter(toy_model("vggt")), tmp_path / "a.safetensors")
    other = toy_model("vggt")
    other.name = "vggt-tiny"
    with pytest.raises(AdapterError, match="was trained on toy-vggt, the model is vggt-tiny"):
        load_adapter(other, path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("rank", "16", "metadata says rank 16, tensors have 8"),
        ("format_version", "2", "format version 2, this library reads 1"),
        ("alpha", "eight", "expected a numeric 'alpha' in the metadata"),
    ],
)
def test_our_file_with_wrong_metadata_refused(tmp_path: Path, field: str, value: str, message: str) -> None:
    path = save_adapter(apply_adapter(toy_model("vggt")), tmp_path / "a.safetensors")
    with safe_open(str(path), framework="pt") as f:
        tensors, meta = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()  # noqa: SIM118
    save_file(tensors, str(path), metadata={**meta, field: value})
    with pytest.raises(AdapterError, match=message):
        read_adapter_file(path)


def test_not_an_adapter_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pth"
    torch.save(toy_model("vggt").state_dict(), path)
    with pytest.raises(AdapterError, match=r"expected LoRA keys like .* found none among \d+ keys"):
        load_adapter(toy_model("vggt"), path)


def test_unreadable_and_missing_files_refused(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="adapter file not found"):
        load_adapter(toy_model("vggt"), tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(AdapterError, match="cannot read adapter file"):
        load_adapter(toy_model("vggt"), tmp_path / "junk.pth")


def test_save_errors(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="has no adapter to save"):
        save_adapter(toy_model("vggt"), tmp_path / "a.safetensors")
    with pytest.raises(AdapterError, match=r"expected a .safetensors path, got 'a.pth'"):
        save_adapter(apply_adapter(toy_model("vggt")), tmp_path / "a.pth")
