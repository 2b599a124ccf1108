"""Adapter files: our safetensors round trip, the authors' PEFT-wrapped layout, and the error cases."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model_state_dict, set_peft_model_state_dict
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
from fin3r_lib.models.checkpoint import load_checkpoint_into

#: what a trainer stores with its adapter, written out by hand
TRAINING_METADATA = {"config": {"lr": 0.0001, "steps": 2000, "teacher": "moge-2"}, "metrics": {"abs_rel": 0.0412}}


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


#: the encoder blocks' qkv of each toy backbone as a PEFT full-match pattern, written out by hand
TARGETS = {"vggt": r"aggregator\.patch_embed\.blocks\.\d+\.attn\.qkv", "cut3r": r"enc_blocks\.\d+\.attn\.qkv"}


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
        "checkpoint_sha256": "",  # random weights: no checkpoint file
        "rank": "4",
        "alpha": "6.0",
        "renorm": "qkv",
        "target_modules": TARGETS[kind],
        "num_blocks": "2",
        "metadata": "{}",
    }
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
    with pytest.raises(AdapterError, match=r"adapter file .*junk\.pth is not a torch file: .* found b'not a to'"):
        load_adapter(toy_model("vggt"), tmp_path / "junk.pth")


def test_save_errors(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="has no adapter to save"):
        save_adapter(toy_model("vggt"), tmp_path / "a.safetensors")
    with pytest.raises(AdapterError, match=r"expected a .safetensors path, got 'a.pth'"):
        save_adapter(apply_adapter(toy_model("vggt")), tmp_path / "a.pth")


def test_metadata_and_checkpoint_hash_round_trip(tmp_path: Path, kind: str) -> None:
    model = toy_model(kind)
    checkpoint = tmp_path / "base.pt"
    torch.save(model.state_dict(), checkpoint)
    load_checkpoint_into(model, checkpoint)
    apply_adapter(model)
    randomize_lora(model)
    for target in (tmp_path / "one.safetensors", tmp_path / "peft-folder"):
        adapter = read_adapter_file(save_adapter(model, target, metadata=TRAINING_METADATA))
        assert adapter.metadata == {
            "config": {"lr": 0.0001, "steps": 2000, "teacher": "moge-2"},
            "metrics": {"abs_rel": 0.0412},
        }
        assert adapter.checkpoint_sha256 == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
        assert (adapter.base_model, adapter.rank, adapter.alpha) == (f"toy-{kind}", 8, 8.0)


def test_peft_folder_is_the_standard_layout(tmp_path: Path, kind: str) -> None:
    """The folder loads with PEFT's own `PeftModel.from_pretrained` (as plain LoRA) to the same tensors,
    and with ours (re-normalized) bit-exactly."""
    model = apply_adapter(toy_model(kind), rank=4, alpha=6.0)
    randomize_lora(model)
    folder = save_adapter(model, tmp_path / "adapter")
    assert sorted(p.name for p in folder.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    config = json.loads((folder / "adapter_config.json").read_text())
    assert (config["peft_type"], config["r"], config["lora_alpha"]) == ("LORA", 4, 6.0)
    assert (config["target_modules"], config["base_model_name_or_path"]) == (TARGETS[kind], f"toy-{kind}")
    with safe_open(str(folder / "adapter_model.safetensors"), framework="pt") as f:
        keys = sorted(f.keys())
    blocks = model.encoder_blocks_path
    assert keys == sorted(f"base_model.model.{blocks}.{i}.attn.qkv.lora_{ab}.weight" for i in range(2) for ab in "AB")

    ours = model.state_dict()
    plain = PeftModel.from_pretrained(toy_model(kind), str(folder))
    assert isinstance(plain.peft_config["default"], LoraConfig)
    peft_state = plain.base_model.model.state_dict()
    for key in (k for k in ours if ".lora_" in k):
        assert torch.equal(peft_state[key], ours[key]), key

    loaded = load_adapter(toy_model(kind), folder)
    assert adapter_config(loaded) == AdapterConfig(4, 6.0)
    images = toy_images()
    with torch.no_grad():
        want, got = model(images), loaded(images)
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_peft_state_dict_helpers_round_trip_our_tensors(kind: str) -> None:
    model = apply_adapter(toy_model(kind))
    randomize_lora(model)
    state = get_peft_model_state_dict(model)
    assert sorted(state) == sorted(k.replace(".default.", ".") for k in model.state_dict() if ".lora_" in k)
    fresh = apply_adapter(toy_model(kind))
    result = set_peft_model_state_dict(fresh, state)
    assert not result.unexpected_keys
    assert all(torch.equal(a, b) for a, b in zip(_lora_only(fresh.state_dict()).values(),
                                                   _lora_only(model.state_dict()).values(), strict=True))  # fmt: skip
    images = toy_images()
    with torch.no_grad():
        assert torch.equal(fresh(images)["out"], model(images)["out"])


def test_plain_peft_folder_refused(tmp_path: Path) -> None:
    model = apply_adapter(toy_model("vggt"))
    folder = save_adapter(model, tmp_path / "adapter")
    weights = folder / "adapter_model.safetensors"
    with safe_open(str(weights), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    save_file(tensors, str(weights), metadata={"format": "pt"})  # what PEFT's save_pretrained writes
    with pytest.raises(AdapterError, match=r"no fin3r metadata .* a plain PEFT LoRA is not a re-normalized adapter"):
        load_adapter(toy_model("vggt"), folder)
    (folder / "adapter_config.json").unlink()
    with pytest.raises(AdapterError, match=r"missing \['adapter_config.json'\]"):
        read_adapter_file(folder)


def test_unserializable_metadata_refused(tmp_path: Path) -> None:
    model = apply_adapter(toy_model("vggt"))
    with pytest.raises(AdapterError, match="expected a JSON-serializable dict"):
        save_adapter(model, tmp_path / "a.safetensors", metadata={"bad": object()})
    assert not (tmp_path / "a.safetensors").exists()
