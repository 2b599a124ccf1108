"""Loading CUT3R releases: a `.pth` dict {model, args (foreign pickled object), epoch} with `module.` keys."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fin3r_lib.errors import CheckpointError
from fin3r_lib.models.loader import build_model

FOREIGN_MODULE = "cut3r_training_args_not_installed"


def _foreign_args(tmp_path: Path) -> object:
    """An object whose class lives in a module that will not exist when the checkpoint is read."""
    (tmp_path / f"{FOREIGN_MODULE}.py").write_text(
        "class TrainArgs:\n    def __init__(self):\n        self.model = 'x'\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        return importlib.import_module(FOREIGN_MODULE).TrainArgs()
    finally:
        sys.path.remove(str(tmp_path))


def _forget_foreign_module(tmp_path: Path) -> None:
    sys.modules.pop(FOREIGN_MODULE, None)
    (tmp_path / f"{FOREIGN_MODULE}.py").unlink()


@pytest.fixture
def release_like(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(3)
    model = build_model("cut3r-tiny")
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    path = tmp_path / "cut3r_tiny.pth"
    torch.save({"model": state, "args": _foreign_args(tmp_path), "epoch": 4}, path)
    _forget_foreign_module(tmp_path)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(FOREIGN_MODULE)
    return path, model


def test_release_like_checkpoint_round_trips(release_like: tuple[Path, torch.nn.Module]) -> None:
    path, original = release_like
    loaded = build_model("cut3r-tiny", checkpoint=path)
    assert all(not t.is_meta for t in [*loaded.parameters(), *loaded.buffers()])
    want, got = original.state_dict(), loaded.state_dict()
    assert list(got) == list(want)
    for name, tensor in want.items():
        assert torch.equal(got[name], tensor), name
    img = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(original.new_stream().step(img).depth, loaded.new_stream().step(img).depth)


def test_truncated_checkpoint_raises(release_like: tuple[Path, torch.nn.Module], tmp_path: Path) -> None:
    path, _ = release_like
    cut = tmp_path / "truncated.pth"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"truncated\.pth"):
        build_model("cut3r-tiny", checkpoint=cut)


def test_other_variant_checkpoint_is_refused(release_like: tuple[Path, torch.nn.Module]) -> None:
    path, _ = release_like
    with pytest.raises(CheckpointError, match="does not match"):
        build_model("cut3r-224-linear", checkpoint=path)
