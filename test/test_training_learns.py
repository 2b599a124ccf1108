"""It learns: on a fixed batch of real 7-Scenes frames with the sensor teacher, the distillation loss of
vggt-tiny and cut3r-tiny falls by a margin that broken trainers (lr 0, gradients cut from the adapter,
labels mirrored) cannot reach.

Random tiny heads predict an almost constant depth (cut3r-tiny: std/mean 5e-6, vggt-tiny 8e-3), so no
encoder change can move it; the base here has its frozen depth head's output channel scaled (a
fixed, responsive base; the head stays frozen and only the adapter trains). "Specific" is the loss
fall on the true labels minus its fall on the mirrored labels: what a trainer learned from the true
pairing and not from the mirrored one.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fin3r_lib.data.frame import Frame
from fin3r_lib.training.config import SourceConfig, TrainConfig
from fin3r_lib.training.data import single_view_sample
from fin3r_lib.training.pseudo_label import pseudo_label
from fin3r_lib.training.student import build_student
from fin3r_lib.training.teachers.sensor import SensorTeacher
from fin3r_lib.training.trainer import Batch, Trainer, compute_loss

#: model -> (final depth-head convolution, its depth output channels, gain giving a responsive base)
HEADS = {
    "vggt-tiny": ("depth_head.scratch.output_conv2.2", 1, 10.0),
    "cut3r-tiny": ("downstream_head.dpt_self.head.4", 3, 20.0),
}
SIDE = 160  # frames at 160x120


def _frames(folder: Path) -> list[Frame]:
    k = np.loadtxt(folder / "camera-intrinsics.txt")
    scale = SIDE / 640
    k[:2, :2] *= scale
    k[:2, 2] = (k[:2, 2] + 0.5) * scale - 0.5
    frames = []
    for n, i in enumerate((150, 162, 174, 186)):
        rgb = cv2.cvtColor(cv2.imread(str(folder / f"frame-{i:06d}.color.png")), cv2.COLOR_BGR2RGB)
        depth = cv2.imread(str(folder / f"frame-{i:06d}.depth.png"), cv2.IMREAD_UNCHANGED).astype(np.float32) / 1000
        depth[depth >= 65.0] = 0.0  # 7-Scenes writes 65535 where the sensor saw nothing
        rgb = cv2.resize(rgb, (SIDE, 120), interpolation=cv2.INTER_AREA)
        depth = cv2.resize(depth, (SIDE, 120), interpolation=cv2.INTER_NEAREST)
        frames.append(Frame(rgb=rgb, stamp=n / 10, intrinsics=k, index=n, depth=depth, source=f"frame-{i}"))
    return frames


def _loss(trainer: Trainer, labelled: list, mirrored: bool) -> float:
    samples = [single_view_sample(trainer.model, f, lab, flip=mirrored) for f, lab in labelled]
    batch = Batch(
        "single_view",
        torch.stack([s.image for s in samples])[:, None],
        torch.stack([s.label for s in samples]),
        torch.stack([s.mask for s in samples]),
        torch.stack([s.ray_norm for s in samples]),
    )
    with torch.no_grad():
        return float(compute_loss(trainer.model(batch.images), batch, trainer.cfg)[0])


def _train(name: str, labelled: list, tmp_path: Path, variant: str) -> tuple[float, float]:
    """Falls of the loss on the true and on the mirrored labels after training `variant`."""
    broken_lr = variant == "lr0"
    cfg = TrainConfig(
        model=name,
        checkpoint="none",
        single_view=[SourceConfig(path="memory")],
        batch_size=4,
        steps=3 if variant in ("lr0", "no_gradient") else 20,
        lr=1e-30 if broken_lr else 3e-2,  # lr 0 itself is refused by the config
        min_lr=1e-30 if broken_lr else 3e-2,
        warmup_steps=1,
        flip_labels=variant == "mirrored",
        device="cpu",
        out=str(tmp_path / variant),
        checkpoint_every=0,
        log_every=1000,
        tensorboard=False,
        seed=0,
    )
    student = build_student(cfg.model_options(), cfg.trainable, cfg.rank, cfg.alpha)
    layer, channels, gain = HEADS[name]
    conv = student.get_submodule(layer)
    with torch.no_grad():
        conv.weight[:channels].mul_(gain)
        conv.bias[:channels].mul_(gain)
    trainer = Trainer(cfg, [labelled], [], model=student)
    if variant == "no_gradient":
        for p in trainer.params.values():
            p.register_hook(torch.zeros_like)
    before = _loss(trainer, labelled, False), _loss(trainer, labelled, True)
    trainer.run(progress=False)
    after = _loss(trainer, labelled, False), _loss(trainer, labelled, True)
    return before[0] - after[0], before[1] - after[1]


@pytest.mark.parametrize("name", sorted(HEADS))
def test_the_loss_falls_by_a_margin_broken_trainers_cannot_reach(
    name: str, seven_scenes_dir: Path, tmp_path: Path
) -> None:
    frames = _frames(seven_scenes_dir)
    labelled = [(f, pseudo_label(o, f.intrinsics)) for f, o in zip(frames, SensorTeacher().label(frames), strict=True)]
    fall, fall_mirrored = _train(name, labelled, tmp_path, "ok")
    assert fall > 0.01, f"{name}: the loss fell by only {fall:.5f}"
    assert fall - fall_mirrored > 0.01, f"{name}: specific fall {fall - fall_mirrored:.5f}"
    wrong, wrong_mirrored = _train(name, labelled, tmp_path, "mirrored")
    assert wrong - wrong_mirrored < 0.0, f"{name}: mirrored labels gave a specific fall {wrong - wrong_mirrored:.5f}"
    assert wrong < fall - 0.01
    for variant in ("lr0", "no_gradient"):
        still, _ = _train(name, labelled, tmp_path, variant)
        assert abs(still) < 1e-7, f"{name} {variant}: the loss moved by {still}"
