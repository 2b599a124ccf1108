"""Every recipe in training/configs/ goes through the config parser: placeholders refused by name,
accepted once set; the paper's recipes hold the published data mix and schedule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from fin3r_lib.models.registry import list_models
from fin3r_lib.training.config import ConfigError, load_config
from fin3r_lib.training.teachers import TEACHERS

CONFIGS = Path(__file__).resolve().parents[1] / "training" / "configs"
RECIPES = sorted(CONFIGS.glob("*.yaml"))


def placeholder_keys(path: Path) -> list[str]:
    """`single_view.0.path`-style keys whose YAML value is a `<NAME>` placeholder (read independently)."""
    raw = yaml.safe_load(path.read_text())
    return [
        f"{kind}.{i}.{key}"
        for kind in ("single_view", "replay")
        for i, src in enumerate(raw.get(kind) or [])
        for key, value in src.items()
        if isinstance(value, str) and re.fullmatch(r"<[A-Z0-9_]+>", value)
    ]


def test_the_recipes_are_there() -> None:
    names = {p.stem for p in RECIPES}
    assert {"robot-moge", "robot-rgbd-sensor", "paper-vggt", "paper-cut3r", "tiny-cpu"} <= names


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_parses_once_its_paths_are_set(recipe: Path, tmp_path: Path) -> None:
    keys = placeholder_keys(recipe)
    assert keys, "every recipe leaves its dataset paths to the user"
    with pytest.raises(ConfigError, match="dataset paths not set") as error:
        load_config(recipe)
    for key in keys:
        assert key in str(error.value)
    cfg = load_config(recipe, [f"{key}={tmp_path / key}" for key in keys])
    assert cfg.model in list_models() and cfg.teacher in TEACHERS
    assert cfg.single_view and cfg.single_view[0].path == str(tmp_path / "single_view.0.path")


@pytest.mark.parametrize("name", ["paper-vggt", "paper-cut3r"])
def test_paper_recipes_hold_the_published_mix(name: str, tmp_path: Path) -> None:
    recipe = CONFIGS / f"{name}.yaml"
    cfg = load_config(recipe, [f"{key}={tmp_path}" for key in placeholder_keys(recipe)])
    assert cfg.model == {"paper-vggt": "vggt-1b", "paper-cut3r": "cut3r-512-dpt"}[name]
    assert cfg.teacher == "moge" and (cfg.rank, cfg.alpha, cfg.trainable) == (8, 8.0, "adapter")
    assert len(cfg.single_view) == 1 and len(cfg.replay) == 2
    assert cfg.replay[0].weight == cfg.replay[1].weight
    assert cfg.replay_fraction == pytest.approx(2_000 / 22_000, abs=1e-4)
    assert all(2 <= s.views <= 8 for s in cfg.replay)
    processes = 4  # the paper's 4 GPUs, one process each
    assert cfg.steps * cfg.batch_size * cfg.accumulation * processes == 10 * 22_000
