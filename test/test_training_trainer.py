"""The training loop: frozen means frozen, exact trainable counts, bit-exact resume, atomic checkpoints, config."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from fin3r_lib.adapter import read_adapter_file
from fin3r_lib.data.frame import Frame
from fin3r_lib.model_options import ModelOptions
from fin3r_lib.training.config import ConfigError, SourceConfig, TrainConfig, load_config
from fin3r_lib.training.pseudo_label import pseudo_label
from fin3r_lib.training.state import latest_checkpoint, list_checkpoints
from fin3r_lib.training.student import FrozenCheck, TrainingError, build_student, count_trainable
from fin3r_lib.training.teachers.sensor import SensorTeacher
from fin3r_lib.training.trainer import Trainer, learning_rate

K = np.array([[80.0, 0.0, 63.5], [0.0, 80.0, 47.5], [0.0, 0.0, 1.0]])


def synthetic_frames(n: int = 4) -> list[Frame]:
    """Small RGB-D frames of a slanted textured plane seen from slightly moving cameras."""
    v, u = np.mgrid[0:96, 0:128]
    frames = []
    for i in range(n):
        depth = (1.5 + 0.01 * u + 0.004 * v + 0.1 * i).astype(np.float32)
        depth[10:14, 20:30] = 0.0
        rgb = np.stack([(u * 2 + 30 * i) % 256, (v * 3) % 256, ((u + v) * 5) % 256], axis=-1).astype(np.uint8)
        pose = np.eye(4)
        pose[0, 3] = 0.05 * i
        frames.append(
            Frame(rgb=rgb, stamp=i / 10, intrinsics=K, index=i, depth=depth, cam_to_world=pose, source=f"synthetic#{i}")
        )
    return frames


def labelled(frames: list[Frame]) -> list:
    return [(f, pseudo_label(o, f.intrinsics)) for f, o in zip(frames, SensorTeacher().label(frames), strict=True)]


def config(tmp_path: Path, **kw) -> TrainConfig:
    args = dict(
        model="vggt-tiny",
        checkpoint="none",
        single_view=[SourceConfig(path="memory")],
        replay=[SourceConfig(path="memory", views=2)],
        replay_fraction=0.3,
        batch_size=2,
        accumulation=2,
        steps=4,
        lr=1e-2,
        warmup_steps=1,
        min_lr=0.0,
        out=str(tmp_path / "run"),
        checkpoint_every=2,
        log_every=1,
        tensorboard=False,
        augment=True,
        seed=3,
    )
    args.update(kw)
    return TrainConfig(**args)


@pytest.mark.parametrize("name", ["vggt-1b", "cut3r-512-dpt"])
def test_full_size_students_train_exactly_the_adapter(name: str) -> None:
    model = build_student(ModelOptions(name, "none", device="meta"), "adapter")
    assert count_trainable(model) == 24 * (8 * 1024 + 3072 * 8) == 786_432
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all(".lora_A." in n or ".lora_B." in n for n in names) and len(names) == 48


def test_frozen_means_frozen_and_the_adapter_moves(tmp_path: Path) -> None:
    frames = synthetic_frames()
    trainer = Trainer(config(tmp_path, steps=2, checkpoint_every=0), [labelled(frames)], [frames])
    base = FrozenCheck(trainer.model)
    before = {n: p.detach().clone() for n, p in trainer.params.items()}
    result = trainer.run(progress=False)
    assert base.changed(trainer.model) == []
    assert result.frozen_checked == len(base.reference) > 100
    moved = [n for n, p in trainer.params.items() if not torch.equal(p, before[n])]
    assert any(".lora_B." in n for n in moved) and any(".lora_A." in n for n in moved)
    assert Path(result.files["last"]).is_file() and Path(result.files["last"]).with_suffix(".json").is_file()
    stored = read_adapter_file(result.files["last"]).metadata
    assert stored["step"] == 2 and stored["config"]["steps"] == 2 and "metrics" in stored


def test_encoder_mode_keeps_decoder_and_heads(tmp_path: Path) -> None:
    frames = synthetic_frames(2)
    trainer = Trainer(
        config(tmp_path, trainable="encoder", steps=2, replay=[], replay_fraction=0.0), [labelled(frames)]
    )
    trainable = set(trainer.params)
    assert trainable and all(n.startswith("aggregator.patch_embed.blocks.") for n in trainable)
    result = trainer.run(progress=False)
    assert result.frozen_checked > 0  # run() verifies: it raises when a frozen tensor changed


def test_a_changed_frozen_tensor_is_caught(tmp_path: Path) -> None:
    trainer = Trainer(config(tmp_path, steps=1, replay=[]), [labelled(synthetic_frames(2))])
    with torch.no_grad():
        trainer.model.depth_head.norm.weight.add_(1e-7)
    with pytest.raises(TrainingError, match=r"frozen tensors changed.*depth_head\.norm\.weight"):
        trainer.frozen.verify(trainer.model)


@pytest.mark.slow
def test_resume_is_bit_exact(tmp_path: Path) -> None:
    frames = synthetic_frames()
    straight = Trainer(config(tmp_path / "a"), [labelled(frames)], [frames])
    straight.run(progress=False)

    first = Trainer(config(tmp_path / "b"), [labelled(frames)], [frames])
    first.run(max_steps=2, progress=False)
    assert [p.name for p in list_checkpoints(tmp_path / "b" / "run" / "checkpoints")] == ["step-00000002"]
    with pytest.raises(TrainingError, match="--resume"):
        Trainer(config(tmp_path / "b"), [labelled(frames)], [frames]).run(progress=False)
    torch.manual_seed(12345)  # a fresh process would start from other RNG states: they are restored
    second = Trainer(config(tmp_path / "b"), [labelled(frames)], [frames])
    second.run(resume=True, progress=False)
    assert second.step == straight.step == 4
    for name, p in straight.params.items():
        assert torch.equal(p, second.params[name]), name
    a, b = straight.optimizer.state_dict()["state"], second.optimizer.state_dict()["state"]
    for i in a:
        assert torch.equal(a[i]["exp_avg_sq"], b[i]["exp_avg_sq"])


def test_kill_during_checkpoint_write_leaves_the_previous_one(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, sys, time, torch
        from pathlib import Path
        from fin3r_lib.training import state
        p = {{"w": torch.nn.Parameter(torch.ones(3, 3))}}
        opt = torch.optim.AdamW(p.values())
        p["w"].grad = torch.ones(3, 3); opt.step()
        folder = Path({str(tmp_path)!r})
        state.save_checkpoint(folder, 1, p, opt, {{}}, keep=3)
        def stalled_replace(src, dst):
            print("writing", flush=True)
            time.sleep(60)
        state.os.replace = stalled_replace
        p["w"].data.fill_(5.0)
        state.save_checkpoint(folder, 2, p, opt, {{}}, keep=3)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.kill()
    proc.wait()
    assert (tmp_path / ".step-00000002.tmp").is_dir()  # the interrupted write
    state = latest_checkpoint(tmp_path)
    assert state is not None and state.step == 1
    assert torch.equal(state.params["w"], torch.ones(3, 3) - 1e-3 * 0.01 - 1e-3)  # AdamW: decay + unit step


def test_learning_rate_schedule(tmp_path: Path) -> None:
    cfg = config(tmp_path, steps=10, warmup_steps=2, lr=1.0, min_lr=0.1)
    assert learning_rate(0, cfg) == pytest.approx(0.5)
    assert learning_rate(1, cfg) == pytest.approx(1.0)
    assert learning_rate(2, cfg) == pytest.approx(1.0)
    assert learning_rate(6, cfg) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 0.5)))
    assert learning_rate(10, cfg) == pytest.approx(0.1)


def test_config_file_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model: cut3r-tiny\nsteps: 5\nsingle_view:\n  - path: /data/a\n    weight: 2\n")
    cfg = load_config(path, ["lr=3e-4", "single_view.0.labels=/labels", "replay.0.path=/data/b", "replay.0.views=3"])
    assert (cfg.model, cfg.steps, cfg.lr) == ("cut3r-tiny", 5, 3e-4)
    assert cfg.single_view[0] == SourceConfig(path="/data/a", weight=2.0, labels="/labels")
    assert cfg.replay[0].views == 3
    with pytest.raises(ConfigError, match=r"^stpes: unknown key"):
        load_config(path, ["stpes=3"])
    with pytest.raises(ConfigError, match=r"^steps: expected int, got 'many'"):
        load_config(path, ["steps=many"])
    with pytest.raises(ConfigError, match=r"^single_view.0.wieght: unknown key"):
        load_config(path, ["single_view.0.wieght=1"])
    with pytest.raises(ConfigError, match=r"^replay.0.views: expected 2..8"):
        load_config(path, ["replay.0.path=/x", "replay.0.views=9"])
    with pytest.raises(ConfigError, match=r"^trainable: expected one of adapter, encoder"):
        load_config(path, ["trainable=all"])
    path.write_text("!!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="cannot read training config"):
        load_config(path)
