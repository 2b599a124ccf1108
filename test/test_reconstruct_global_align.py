"""`fin3r reconstruct --global-align` end to end with the tiny DUSt3R (random weights) on real 7-Scenes frames."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fin3r_lib.cli.main import main
from fin3r_lib.outputs import read_tum

WINDOW = 2


@pytest.fixture(scope="module")
def image_folder(seven_scenes_dir: Path, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    for src in sorted(seven_scenes_dir.glob("frame-*.color.png"))[::12]:  # 5 frames
        shutil.copy(src, folder / src.name)
    return folder


def _base(folder: Path, out: Path, model: str) -> list[str]:
    return ["reconstruct", str(folder), "--out", str(out), "--model", model, "--checkpoint", "none", "--device", "cpu"]


def test_global_align_writes_an_aligned_trajectory_map_and_report(image_folder, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    options = ["--global-align", "--align-window", str(WINDOW), "--align-iterations", "40", "--quiet"]
    options += ["--input-max-side", "128", "--keyframe-min-flow-px", "0", "--min-confidence", "1"]
    assert main([*_base(image_folder, out, "dust3r-tiny"), *options]) == 0
    printed = capsys.readouterr().out
    assert "global alignment of 5 keyframes over" in printed

    records = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    assert len(records) == 5 and all(r["keyframe"] for r in records)  # flow 0: every frame is a keyframe
    chain_stamps, _ = read_tum(out / "trajectory.txt")
    stamps, poses = read_tum(out / "trajectory_aligned.txt")
    np.testing.assert_array_equal(stamps, chain_stamps)
    assert np.isfinite(poses).all()
    rot = poses[:, :3, :3]
    np.testing.assert_allclose(rot @ rot.transpose(0, 2, 1), np.broadcast_to(np.eye(3), rot.shape), atol=1e-6)
    np.testing.assert_allclose(poses[0], np.eye(4), atol=1e-9)  # the first keyframe stays the world

    report = json.loads((out / "alignment.json").read_text())
    assert report["keyframes"] == 5
    assert report["edges"] == sum(min(n, WINDOW) for n in range(5)) == 7
    assert 0 < report["loss_final"] <= report["loss_initial"]
    assert sorted(report["depth_scales"]) == [r["name"] for r in records]
    assert report["depth_scales"][records[0]["name"]] == pytest.approx(1.0, abs=1e-9)

    header = (out / "map_aligned.ply").read_bytes().split(b"end_header\n")[0].decode()
    assert f"element vertex {report['map_points']}" in header and report["map_points"] > 0


def test_global_align_refuses_a_non_pairwise_model_and_resume(image_folder, tmp_path, capsys) -> None:
    out = tmp_path / "vggt"
    assert main([*_base(image_folder, out, "vggt-tiny"), "--global-align"]) == 1
    assert "global alignment needs a pairwise model" in capsys.readouterr().err
    assert not any(out.iterdir())  # refused before anything was written
    assert main([*_base(image_folder, tmp_path / "r", "dust3r-tiny"), "--global-align", "--resume"]) == 1
    assert "--global-align cannot --resume" in capsys.readouterr().err
