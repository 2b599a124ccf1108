"""The README's "Robot logs and offline reconstruction" commands, run as written on bags of the 7-Scenes frames.

The only change made to them: `--model vggt-1b --checkpoint default` becomes the tiny random model
(no network, no 1B weights here); file names, topics and every other option are the README's.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bag_fixtures import PERIOD_NS, CameraSpec, rigid, storage_file, write_bag
from conftest import REPO

N = 20  # frames per bag, 10 Hz
TINY = {"--model": "vggt-tiny", "--checkpoint": "none"}


def readme_commands(section: str) -> list[list[str]]:
    """The `fin3r` commands of the first bash block after the README heading `section` (comments dropped)."""
    text = (REPO / "README.md").read_text()
    after = text[text.index(f"\n## {section}") :]
    block = re.search(r"```bash\n(.*?)```", after, re.S).group(1)
    joined = block.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip()]


def _fin3r(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    assert args[0] == "fin3r", args
    command = [sys.executable, "-m", "fin3r_lib.cli.main", *args[1:]]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)


def _tiny(args: list[str]) -> list[str]:
    out = list(args)
    for flag, value in TINY.items():
        out[out.index(flag) + 1] = value
    return out


def test_readme_robot_log_commands_run_as_written(tmp_path: Path, seven_scenes) -> None:
    extract_list, extract, reconstruct = readme_commands("Robot logs and offline reconstruction")
    assert extract_list[:3] == ["fin3r", "extract", "run1.mcap"] and extract[2:4] == ["run1.mcap", "run2_db3_folder/"]
    rgb, poses, k = seven_scenes["rgb"], rigid(seven_scenes["poses"]), seven_scenes["K"]
    t0 = 1_700_000_000_000_000_000
    for i, (storage, name) in enumerate((("mcap", "run1"), ("sqlite3", "run2_db3_folder"))):
        part = slice(i * N, (i + 1) * N)
        stamps = [t0 + (i * 100 + j) * PERIOD_NS for j in range(N)]
        spec = CameraSpec(rgb[part], k, poses[part], ns="/camera", stamps_ns=stamps)
        bag = write_bag(tmp_path / "bags" / name, [spec], storage=storage)
        if storage == "mcap":
            shutil.copy(storage_file(bag), tmp_path / "run1.mcap")  # the README names the storage file itself
        else:
            shutil.copytree(bag, tmp_path / name)

    listed = _fin3r(extract_list, tmp_path)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert re.search(r"/camera/image_raw\s+sensor_msgs/msg/Image\s+20\b", listed.stdout), listed.stdout

    extracted = _fin3r(extract, tmp_path)
    assert extracted.returncode == 0, extracted.stderr[-2000:]
    records = [json.loads(line) for line in (tmp_path / "data/run1/manifest.jsonl").read_text().splitlines()]
    sources = {r["source"].split("#")[0] for r in records}
    assert sources == {"run1.mcap", "run2_db3_folder"} and len(records) >= 4, sources  # frames of both bags
    gaps = [b["stamp_ns"] - a["stamp_ns"] for a, b in itertools.pairwise(records)]
    assert min(gaps) >= 2 * PERIOD_NS  # --max-rate 5 of 10 Hz images

    reconstructed = _fin3r(_tiny(reconstruct), tmp_path)
    assert reconstructed.returncode == 0, reconstructed.stderr[-2000:]
    summary = json.loads((tmp_path / "out/run1/summary.json").read_text())
    assert summary["frames"] == len(records), summary


@pytest.mark.parametrize("flag", sorted(TINY))
def test_the_readme_reconstruct_line_names_the_flags_the_test_replaces(flag: str) -> None:
    reconstruct = readme_commands("Robot logs and offline reconstruction")[2]
    assert reconstruct[:2] == ["fin3r", "reconstruct"] and flag in reconstruct
