"""`make train-demo` end to end on the real 7-Scenes frames: labels, training, evaluation, the node.

The script is run as a user runs it (bash, its default recipe); then its adapter is checked in
`fin3r reconstruct` against the node's outputs and against the base model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import REPO


def _reconstruct(data: Path, out: Path, *adapter: str) -> Path:
    command = [sys.executable, "-m", "fin3r_lib.cli.main", "reconstruct", str(data), "--out", str(out)]
    command += ["--model", "vggt-tiny", "--checkpoint", "none", "--max-frames", "1", "--input-max-side", "320"]
    command += ["--pattern", "*.color.png", "--quiet", *adapter]
    subprocess.run(command, check=True, cwd=REPO, capture_output=True, timeout=300)
    return out / "depth" / "000000.npy"


def test_train_demo_adapter_runs_in_node_and_cli(seven_scenes_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    env = {**os.environ, "DATA": str(seven_scenes_dir), "RUN": str(run), "VENV": str(Path(sys.executable).parents[1])}
    done = subprocess.run(
        ["bash", "scripts/train_demo.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=540
    )
    assert done.returncode == 0, done.stderr[-3000:]
    adapter = run / "train" / "adapter-last.safetensors"
    assert adapter.is_file()
    assert json.loads((run / "train" / "adapter-last.json").read_text())["step"] == 60

    results = json.loads((run / "evaluate" / "results.json").read_text())
    base = results["runs"]["base"]["model_level"]["monocular"]
    tuned = results["runs"]["adapter-last"]["model_level"]["monocular"]
    assert base["frames"] == tuned["frames"] == 10
    assert np.isfinite([base["abs_rel"], tuned["abs_rel"]]).all()
    assert base["abs_rel"] != tuned["abs_rel"]
    assert "| model_level.monocular.abs_rel |" in done.stdout  # the table is printed

    summary = json.loads((run / "node" / "summary.json").read_text())
    assert summary["frames"] == 50 and summary["skipped"] == []
    assert summary["settings"]["adapter"] == str(adapter)
    node_depth = np.load(run / "node" / "depth" / "000000.npy")

    # the same adapter through `fin3r reconstruct`: the node's first depth exactly (one runner), and not the base's
    tuned_depth = np.load(_reconstruct(seven_scenes_dir, tmp_path / "tuned", "--adapter", str(adapter)))
    base_depth = np.load(_reconstruct(seven_scenes_dir, tmp_path / "base"))
    np.testing.assert_allclose(node_depth, tuned_depth, rtol=0, atol=1e-6)
    change = np.abs(tuned_depth - base_depth).mean() / base_depth.mean()
    assert change > 1e-4, f"the adapter changed the depth by only {change:.2e} of its mean"


def test_train_demo_refuses_an_existing_run_folder(tmp_path: Path) -> None:
    env = {**os.environ, "DATA": str(tmp_path), "RUN": str(tmp_path)}
    done = subprocess.run(["bash", "scripts/train_demo.sh"], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip() == f"train-demo: error: {tmp_path} exists; give a new folder as RUN=..."
