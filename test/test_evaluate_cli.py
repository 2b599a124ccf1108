"""`fin3r evaluate` end to end on the shared 7-Scenes frames: tiny VGGT and CUT3R (random weights), model
and system level, base vs a random non-zero adapter: files complete, numbers finite and different."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fin3r_lib.adapter import apply_adapter, save_adapter
from fin3r_lib.cli.main import main
from fin3r_lib.evaluation.report import flatten
from fin3r_lib.models import build_model


def _random_adapter(name: str, path):
    torch.manual_seed(0)
    model = apply_adapter(build_model(name))
    with torch.no_grad():
        for pname, param in model.named_parameters():
            if "lora_B" in pname:
                param.normal_(0, 0.5)
    return save_adapter(model, path)


@pytest.mark.slow
@pytest.mark.parametrize(("model", "frames"), [("vggt-tiny", "6"), ("cut3r-tiny", "4")])
def test_evaluate_base_vs_adapter_writes_complete_results(seven_scenes_dir, tmp_path, model, frames):
    adapter = _random_adapter(model, tmp_path / "random.safetensors")
    out = tmp_path / "eval"
    argv = ["evaluate", str(seven_scenes_dir), "--out", str(out), "--model", model, "--checkpoint", "none"]
    argv += ["--seed", "0", "--device", "cpu", "--max-frames", frames, "--input-max-side", "112"]
    argv += ["--window", "3", "--quiet"]
    assert main([*argv, "--compare", str(adapter)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"results.json", "results.md", "depth_base.png", "depth_random.png", "trajectory.png"} <= names
    assert all((out / n).stat().st_size > 1000 for n in names if n.endswith(".png"))
    doc = json.loads((out / "results.json").read_text())
    assert doc["dataset"]["kind"] == "seven_scenes" and doc["dataset"]["frames"] == int(frames)
    assert doc["adapters"]["random"]["sha256"] and doc["adapters"]["base"]["sha256"] is None
    assert {"torch", "evo", "numpy"} <= set(doc["versions"])
    base, tuned = (flatten(doc["runs"][k]) for k in ("base", "random"))
    for key in (
        "model_level.monocular.abs_rel",
        "model_level.multiview.acc",
        "system_level.ate.rmse",
        "system_level.map.comp",
        "system_level.depth.delta1",
        "system_level.latency_total.mean_ms",
    ):
        assert np.isfinite(base[key]) and np.isfinite(tuned[key]), key
    assert base["model_level.monocular.abs_rel"] != tuned["model_level.monocular.abs_rel"]
    assert base["system_level.ate.rmse"] != tuned["system_level.ate.rmse"]
    header = (out / "results.md").read_text().splitlines()[2]
    assert header == "| metric | base | random | random - base |"


def test_evaluate_crop_reaches_the_depth_metrics(seven_scenes_dir, tmp_path):
    argv = ["evaluate", str(seven_scenes_dir), "--model", "vggt-tiny", "--checkpoint", "none", "--seed", "0"]
    argv += ["--device", "cpu", "--max-frames", "2", "--input-max-side", "112", "--level", "model", "--quiet"]
    mono = {}
    for crop in ("none", "nyu"):
        assert main([*argv, "--out", str(tmp_path / crop), "--crop", crop]) == 0
        doc = json.loads((tmp_path / crop / "results.json").read_text())
        assert doc["config"]["crop"] == crop
        mono[crop] = doc["runs"]["base"]["model_level"]["monocular"]
        assert mono[crop]["crop"] == crop and np.isfinite(mono[crop]["abs_rel"])
    assert mono["nyu"]["abs_rel"] != mono["none"]["abs_rel"]
    with pytest.raises(SystemExit):
        main([*argv, "--out", str(tmp_path / "bad"), "--crop", "kitti"])


def test_evaluate_tsdf_reference_reaches_the_system_level(seven_scenes_dir, tmp_path):
    argv = ["evaluate", str(seven_scenes_dir), "--model", "vggt-tiny", "--checkpoint", "none", "--seed", "0"]
    argv += ["--device", "cpu", "--max-frames", "3", "--input-max-side", "112", "--level", "system", "--quiet"]
    assert main([*argv, "--out", str(tmp_path), "--reference", "tsdf"]) == 0
    system = json.loads((tmp_path / "results.json").read_text())["runs"]["base"]["system_level"]
    assert system["map_reference"] == "tsdf" and system["map"]["gt_points"] > 0
    assert np.isfinite(system["map"]["acc"]) and np.isfinite(system["map"]["comp"])
