"""`fin3r label` then `fin3r train` end to end on the real 7-Scenes frames (vggt-tiny), resume included;
the adapter it writes loads in `fin3r reconstruct` and changes its depth."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fin3r_lib.adapter import read_adapter_file
from fin3r_lib.cli.main import main
from fin3r_lib.training.config import ConfigError, load_config
from fin3r_lib.training.sources import build_sources

RECIPE = """
model: vggt-tiny
checkpoint: none
seed: 1
teacher: sensor
single_view:
  - path: {data}
    labels: {labels}
    count: 6
replay:
  - path: {data}
    first: 20
    count: 6
    views: 2
    stride: 2
replay_fraction: 0.3
batch_size: 2
steps: 2
lr: 1.0e-2
warmup_steps: 1
val_frames: 2
checkpoint_every: 2
log_every: 1
tensorboard: false
out: {out}
"""


@pytest.fixture(scope="module")
def labels(seven_scenes_dir: Path, tmp_path_factory) -> Path:
    """Sensor-teacher labels of the 50 frames, cached outside ../shared (read-only reference data)."""
    out = tmp_path_factory.mktemp("labels") / "sensor"
    assert main(["label", str(seven_scenes_dir), "--out", str(out), "--quiet"]) == 0
    return out


def test_label_reads_the_seven_scenes_depth(labels: Path, seven_scenes_dir: Path) -> None:
    summary = json.loads((labels / "summary.json").read_text())
    assert summary["labelled"] == 50 and summary["skipped"] == []
    assert len(list(labels.glob("7scenes_redkitchen_150_199-*.safetensors"))) == 50
    assert (labels / "7scenes_redkitchen_150_199-00000199.safetensors").is_file()


@pytest.mark.slow
def test_train_resume_and_reconstruct_with_the_adapter(
    labels: Path, seven_scenes_dir: Path, tmp_path: Path, capsys
) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.format(data=seven_scenes_dir, labels=labels, out=tmp_path / "run"))
    assert main(["train", str(recipe), "steps=4", "--max-steps", "2", "--quiet"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["step"] == 2 and first["frames"] == {"single_view": [4], "replay": [6]}
    assert main(["train", str(recipe), "steps=4", "--quiet"]) == 1
    assert "--resume" in capsys.readouterr().err
    assert main(["train", str(recipe), "steps=4", "--resume", "--quiet"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["step"] == 4 and done["skipped"] == [] and done["frozen_tensors_checked"] > 100
    assert set(done["validation"]) == {"val_distill", "val_abs_rel", "val_delta1"}
    adapter = Path(done["adapter"])
    meta = read_adapter_file(adapter).metadata
    assert meta["step"] == 4 and meta["config"]["single_view"][0]["labels"] == str(labels)

    images = tmp_path / "images"
    images.mkdir()
    for src in sorted(seven_scenes_dir.glob("frame-*.color.png"))[40:42]:
        shutil.copy(src, images / src.name)
    base = ["reconstruct", str(images), "--model", "vggt-tiny", "--checkpoint", "none", "--seed", "1"]
    base += ["--device", "cpu", "--quiet"]
    assert main([*base, "--out", str(tmp_path / "plain")]) == 0
    assert main([*base, "--out", str(tmp_path / "tuned"), "--adapter", str(adapter)]) == 0
    plain = sorted((tmp_path / "plain" / "depth").glob("*.npy"))
    tuned = sorted((tmp_path / "tuned" / "depth").glob("*.npy"))
    assert len(plain) == len(tuned) == 2
    a, b = np.load(plain[0]), np.load(tuned[0])
    both = np.isfinite(a) & np.isfinite(b)
    assert both.mean() > 0.5 and np.abs(a[both] - b[both]).max() > 1e-4


@pytest.mark.parametrize("model", ["dust3r-tiny", "mast3r-tiny"])
def test_pairwise_students_train_through_the_cli(
    model: str, labels: Path, seven_scenes_dir: Path, tmp_path: Path, capsys
) -> None:
    """DUSt3R / MASt3R: single-view distillation on the (I, I) pair and replay of 2-view windows."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.format(data=seven_scenes_dir, labels=labels, out=tmp_path / "run"))
    assert main(["train", str(recipe), f"model={model}", "steps=6", "replay_fraction=0.5", "--quiet"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["step"] == 6 and done["skipped"] == [] and done["frozen_tensors_checked"] > 100
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any("replay" in r for r in log) and any("distill" in r for r in log)
    assert all(np.isfinite(r["loss"]) for r in log)
    adapter = read_adapter_file(Path(done["adapter"]))
    assert adapter.blocks_path == "enc_blocks" and sorted(adapter.lora) == [0, 1]  # DUSt3R's encoder blocks
    assert all(float(pair["B"].abs().max()) > 1e-3 for pair in adapter.lora.values())  # B starts at 0: it trained


def test_sources_errors_name_the_key(labels: Path, seven_scenes_dir: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.format(data=seven_scenes_dir, labels=labels, out=tmp_path / "run"))
    with pytest.raises(ConfigError, match=r"^single_view.0.path: expected an existing dataset"):
        build_sources(load_config(recipe, [f"single_view.0.path={tmp_path / 'nowhere'}"]))
    with pytest.raises(ConfigError, match=r"^single_view.0.kind: expected one of auto"):
        load_config(recipe, ["single_view.0.kind=sevenscenes"])
    with pytest.raises(ConfigError, match=r"^val_frames: expected fewer than .* 6 frames, got 6"):
        build_sources(load_config(recipe, ["val_frames=6"]))
    with pytest.raises(Exception, match="no label cache at"):
        build_sources(load_config(recipe, [f"single_view.0.labels={tmp_path / 'none'}"]))
    partial = tmp_path / "partial"
    shutil.copytree(labels, partial)
    (partial / "7scenes_redkitchen_150_199-00000152.safetensors").unlink()
    sources = build_sources(load_config(recipe, [f"single_view.0.labels={partial}"]))
    assert [f.index for f, _ in sources.single_view[0]] == [150, 151, 153]
    assert [f.index for f, _ in sources.validation] == [154, 155]
    assert (
        len(sources.skipped) == 1 and "no label for 7scenes_redkitchen_150_199-00000152" in sources.skipped[0]["reason"]
    )
