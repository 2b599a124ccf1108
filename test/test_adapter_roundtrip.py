"""The trainer's adapter, saved and loaded into a fresh model strictly: the trained outputs, not the base's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from test_training_trainer import config, labelled, synthetic_frames

from fin3r_lib.adapter import AdapterError
from fin3r_lib.models import build_model
from fin3r_lib.models.base import ReconstructionModel
from fin3r_lib.models.checkpoint import read_safetensors
from fin3r_lib.training.trainer import Trainer

#: vggt-tiny's encoder blocks, where the adapter sits
BLOCKS = "aggregator.patch_embed.blocks"


def images() -> torch.Tensor:
    """Two views of 28x42 (multiples of vggt-tiny's patch size 14), not the training frames."""
    return torch.rand(1, 2, 3, 28, 42, generator=torch.Generator().manual_seed(5))


def outputs(model: ReconstructionModel) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return model(images())


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Trainer, Path, Path]:
    """Two real training steps of vggt-tiny from a base checkpoint file: the trainer, its base, its adapter."""
    tmp = tmp_path_factory.mktemp("roundtrip")
    torch.manual_seed(0)
    base = tmp / "base.pt"
    torch.save(build_model("vggt-tiny").state_dict(), base)
    frames = synthetic_frames(2)
    cfg = config(tmp, checkpoint=str(base), steps=2, batch_size=1, accumulation=1, checkpoint_every=0, lr=0.05)
    trainer = Trainer(cfg, [labelled(frames)], [frames])
    result = trainer.run(progress=False)
    return trainer, base, Path(result.files["last"])


def test_trained_adapter_round_trips_and_changes_outputs(trained: tuple[Trainer, Path, Path]) -> None:
    trainer, base, adapter = trained
    fresh = build_model("vggt-tiny", base, adapter=adapter)
    trained_lora = {n: p for n, p in trainer.model.named_parameters() if ".lora_" in n}
    loaded_lora = {n: p for n, p in fresh.named_parameters() if ".lora_" in n}
    assert loaded_lora.keys() == trained_lora.keys() and len(trained_lora) == 4
    assert all(torch.equal(loaded_lora[n], p) for n, p in trained_lora.items())
    assert any(p.abs().max() > 0 for n, p in trained_lora.items() if ".lora_B." in n)  # B left its zero init

    want, got, plain = outputs(trainer.model), outputs(fresh), outputs(build_model("vggt-tiny", base))
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert torch.equal(got[key], value), key
    assert (got["depth"] - plain["depth"]).abs().max() > 1e-4
    assert (got["world_points"] - plain["world_points"]).abs().max() > 1e-4


def rewrite(adapter: Path, target: Path, drop: set[str] = frozenset(), add: dict | None = None) -> Path:
    """A copy of our adapter file (same metadata) without the keys `drop`, with the tensors `add`."""
    tensors, metadata = read_safetensors(adapter, what="adapter file")
    tensors = {k: v for k, v in tensors.items() if k not in drop}
    save_file({**tensors, **(add or {})}, str(target), metadata=metadata)
    return target


def lora(block: int, ab: str) -> str:
    return f"{BLOCKS}.{block}.attn.qkv.lora_{ab}.weight"


@pytest.mark.parametrize(
    ("drop", "add", "message"),
    [
        ({lora(1, "B")}, {}, r"block 1 needs a 2-D lora_A and lora_B, got \['A'\]"),
        ({lora(1, "A"), lora(1, "B")}, {}, r"\(2 encoder blocks\): missing blocks \[1\], blocks the model does not "),
        (set(), {"stray": torch.zeros(2)}, r"unexpected key 'stray'"),
        (set(), {lora(0, "C"): torch.zeros(8, 64)}, r"unexpected key .*lora_C"),
        (set(), {lora(2, "A"): torch.zeros(8, 64), lora(2, "B"): torch.zeros(192, 8)}, r"does not have \[2\]"),
    ],
    ids=["missing-one-tensor", "missing-block", "extra-key", "extra-tensor-kind", "extra-block"],
)
def test_file_with_missing_or_extra_keys_refused(
    trained: tuple[Trainer, Path, Path], tmp_path: Path, drop: set[str], add: dict, message: str
) -> None:
    _, base, adapter = trained
    bad = rewrite(adapter, tmp_path / "bad.safetensors", drop, add)
    with pytest.raises(AdapterError, match=message):
        build_model("vggt-tiny", base, adapter=bad)
