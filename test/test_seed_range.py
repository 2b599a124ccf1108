"""The `seed` setting: what torch.manual_seed takes unsigned (0 to 2**64 - 1) for the model, what numpy's 32-bit
seeding takes for the trainer; anything else is one setting error naming the key, the range and the value."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from fin3r_lib.errors import SettingError
from fin3r_lib.model_options import MAX_SEED, ModelOptions
from fin3r_lib.training.config import MAX_TRAIN_SEED, ConfigError, TrainConfig


def test_the_bounds_are_the_libraries_own() -> None:
    """The limits are those torch and numpy enforce: checked against them, not against our constant's text."""
    torch.manual_seed(MAX_SEED)
    with pytest.raises(ValueError):
        torch.manual_seed(MAX_SEED + 1)
    np.random.seed(MAX_TRAIN_SEED)
    with pytest.raises(ValueError):
        np.random.seed(MAX_TRAIN_SEED + 1)


@pytest.mark.parametrize("seed", [0, 7, 2**64 - 1, np.int64(3)])
def test_model_seeds_in_range_are_taken(seed) -> None:
    assert ModelOptions(seed=seed).seed == seed


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5, "3", True])
def test_model_seeds_out_of_range_or_not_integers_are_one_error(seed) -> None:
    with pytest.raises(SettingError) as caught:
        ModelOptions(seed=seed)
    assert str(caught.value) == (
        f"ModelOptions.seed: expected an integer from 0 to 18446744073709551615 (torch.manual_seed), got {seed!r}"
    )


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_trainer_seed_out_of_numpy_range_is_one_config_error(seed) -> None:
    with pytest.raises(ConfigError, match=rf"^seed: expected an integer from 0 to 4294967295 .*got {seed}$"):
        TrainConfig(model="vggt-tiny", checkpoint="none", seed=seed)


def test_fin3r_reconstruct_refuses_a_negative_seed_in_one_line(tmp_path) -> None:
    """A real `fin3r reconstruct` process: exit status 2 or 1 with one error line, before any model loads."""
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "000000.png"), np.zeros((48, 64, 3), np.uint8))
    cmd = [sys.executable, "-m", "fin3r_lib.cli.main", "reconstruct", str(frames), "--out", str(tmp_path / "o")]
    proc = subprocess.run([*cmd, "--seed", "-1"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "seed" in lines[0] and "-1" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
