"""`torchrun --nproc_per_node 2 fin3r train` (gloo, CPU) against one process at the same global batch;
`torchrun ... fin3r label` splits the frames between its processes.

Real 7-Scenes frames with sensor labels, vggt-tiny, replay windows, gradient accumulation and
augmentation: the two-process adapter must equal the one-process adapter within fp32 tolerance (each
rank sees half of every micro-batch, so without DDP's gradient averaging they differ by about 1.5e-2),
the logged losses must be the global ones, and only rank 0 may write.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO
from safetensors.torch import load_file

from fin3r_lib.training.config import ConfigError, SourceConfig, TrainConfig
from fin3r_lib.training.data import augment_images
from fin3r_lib.training.distributed import Distributed
from fin3r_lib.training.trainer import Trainer

RECIPE = REPO / "training" / "configs" / "tiny-cpu.yaml"
SETTINGS = [
    "single_view.0.count=8",
    "replay.0.count=12",
    "replay_batch_size=2",
    "replay_fraction=0.3",  # steps 3 and 4 draw a replay micro-batch (seed 0)
    "steps=4",
    "accumulation=2",
    "augment=true",
    "val_frames=0",
    "val_every=0",
    "checkpoint_every=2",
    "log_every=1",
    "warmup_steps=1",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun() -> list[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2"]
    return [*command, "--master_addr", "127.0.0.1", "--master_port", str(_free_port())]


def _run(command: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    """Run `command` in the repository, in its own process group. A run past `timeout` (each normally takes
    5-25 s) has its whole group killed (torchrun's workers too) and fails the test with the last output,
    so a hang in CI says where it hung instead of only that it timed out."""
    proc = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{command[:6]} ran past {timeout} s; stdout tail: {out[-2000:]!r}; stderr tail: {err[-4000:]!r}")
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def _train(prefix: list[str], data: Path, labels: Path, out: Path) -> subprocess.CompletedProcess:
    sources = [f"single_view.0.path={data}", f"single_view.0.labels={labels}", f"replay.0.path={data}"]
    command = [*prefix, "-m", "fin3r_lib.cli.main", "train", str(RECIPE), *sources, *SETTINGS, f"out={out}", "--quiet"]
    return _run(command)


def _files(folder: Path) -> list[str]:
    return sorted(
        str(p.relative_to(folder).parent if "tfevents" in p.name else p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file()
    )


@pytest.fixture(scope="module")
def labels(seven_scenes_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("labels")
    command = [sys.executable, "-m", "fin3r_lib.cli.main", "label", str(seven_scenes_dir), "--out", str(out), "--quiet"]
    run = _run(command)
    assert run.returncode == 0, run.stderr[-2000:]
    return out


def test_two_processes_train_as_one(seven_scenes_dir: Path, labels: Path, tmp_path: Path) -> None:
    one = _train([sys.executable], seven_scenes_dir, labels, tmp_path / "one")
    assert one.returncode == 0, one.stderr[-2000:]
    two = _train(_torchrun(), seven_scenes_dir, labels, tmp_path / "two")
    assert two.returncode == 0, two.stderr[-4000:]
    assert json.loads(two.stdout)["processes"] == 2  # rank 0's summary only: one JSON document
    assert json.loads(one.stdout)["processes"] == 1

    want = load_file(tmp_path / "one" / "adapter-last.safetensors")
    got = load_file(tmp_path / "two" / "adapter-last.safetensors")
    assert got.keys() == want.keys() and len(want) == 4
    moved = max(float(want[k].abs().max()) for k in want if "lora_B" in k)
    assert moved > 1e-3  # the adapter trained: LoRA B starts at 0 (it reaches about 9e-3)
    # Summing the batch in one process or in two halves rounds differently (fp32), and Adam divides each
    # element's step by its gradient's RMS, so elements whose gradients are tiny carry that rounding into
    # their steps: 2e-8 to 3.4e-6 apart on the machines measured. Without DDP's averaging the adapters
    # differ by about 1.5e-2, so 2e-5 still tells the two apart by about 750x.
    for key in want:
        torch.testing.assert_close(got[key], want[key], atol=2e-5, rtol=1e-5, msg=key)

    logs = [
        [json.loads(line) for line in (tmp_path / run / "log.jsonl").read_text().splitlines()] for run in ("one", "two")
    ]
    assert [r["step"] for r in logs[1]] == [1, 2, 3, 4]
    assert any("replay" in r for r in logs[0]) and any("distill" in r for r in logs[0])
    for a, b in zip(*logs, strict=True):
        assert a.keys() == b.keys()
        for key in ("loss", "distill", "replay", "grad_norm"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-5), (a["step"], key)

    # only rank 0 wrote: the same files (one TensorBoard event file), checkpoints of steps 2 and 4
    assert _files(tmp_path / "two") == _files(tmp_path / "one")
    assert len(list((tmp_path / "two" / "tensorboard").iterdir())) == 1
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir()) == ["step-00000002", "step-00000004"]


def test_two_processes_label_half_of_the_frames_each(seven_scenes_dir: Path, labels: Path, tmp_path: Path) -> None:
    out = tmp_path / "labels"
    command = [*_torchrun(), "-m", "fin3r_lib.cli.main", "label", str(seven_scenes_dir), "--out", str(out), "--quiet"]
    run = _run(command)
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads(run.stdout)  # rank 0's merged summary only: one JSON document
    assert (report["labelled"], report["cached"], report["skipped"]) == (50, 0, [])
    assert report["processes"] == [{"labelled": 25, "cached": 0, "skipped": 0}] * 2
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in labels.iterdir())  # no part summaries
    for path in sorted(labels.glob("*.safetensors")):
        got, want = load_file(out / path.name), load_file(path)
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want), path.name
    assert (out / "manifest.json").read_text() == (labels / "manifest.json").read_text()


def test_a_rank_share_is_jittered_as_in_the_whole_batch() -> None:
    images = torch.rand(6, 1, 3, 8, 10, generator=torch.Generator().manual_seed(3))
    whole = augment_images(images, (0, 5, 1))
    for rank in range(3):
        part = Distributed(rank, 3).share(6, "batch_size")
        torch.testing.assert_close(augment_images(images[part], (0, 5, 1), part.start, 6), whole[part], rtol=0, atol=0)
    assert not torch.equal(whole[0:2], augment_images(images[2:4], (0, 5, 1)))  # the share's own draw differs


def test_shares_cover_the_batch_in_order() -> None:
    assert [Distributed(r, 4).share(8, "batch_size") for r in range(4)] == [
        slice(0, 2),
        slice(2, 4),
        slice(4, 6),
        slice(6, 8),
    ]
    assert Distributed().share(3, "batch_size") == slice(0, 3)


@pytest.mark.parametrize(
    ("settings", "key", "count"),
    [({"batch_size": 3}, "batch_size", 3), ({"replay_batch_size": 1}, "replay_batch_size", 1)],
)
def test_a_batch_that_does_not_split_is_refused_before_the_model_loads(settings: dict, key: str, count: int) -> None:
    sizes = {"batch_size": 4, "replay_batch_size": 2, **settings}
    cfg = TrainConfig(model="vggt-1b", checkpoint="default", replay=[SourceConfig(path="frames")], **sizes)
    with pytest.raises(ConfigError) as error:
        Trainer(cfg, dist=Distributed(1, 2))
    assert str(error.value) == f"{key}: expected a multiple of the 2 processes (each takes an equal share), got {count}"
