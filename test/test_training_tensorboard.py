"""TensorBoard logging of `fin3r train`: scalars and student-vs-teacher depth images when tensorboard imports,
one warning line and a run that goes on when it does not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_training_trainer import config, labelled, synthetic_frames

from fin3r_lib.training.trainer import Trainer, depth_preview


def test_depth_preview_scales_by_the_teacher_range() -> None:
    teacher = torch.tensor([[1.0, 2.0], [3.0, 9.0]])
    mask = torch.tensor([[True, True], [True, False]])  # valid range 1..3
    student = torch.tensor([[0.0, 2.0], [2.5, 5.0]])
    image = depth_preview(student, teacher, mask)
    assert image.shape == (1, 2, 4)
    expected = torch.tensor([[[0.0, 0.5, 0.0, 0.5], [0.75, 1.0, 1.0, 0.0]]])
    assert torch.allclose(image, expected)


def test_scalars_and_depth_images_are_logged(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    frames = synthetic_frames(2)
    cfg = config(tmp_path, model="cut3r-tiny", steps=2, replay=[], replay_fraction=0.0, tensorboard=True)
    Trainer(cfg, [labelled(frames)]).run(progress=False)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert {"loss", "distill", "lr", "grad_norm", "token_norm", "token_norm_base"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("loss")] == [1, 2]
    images = events.Images("depth/student_teacher")
    assert [e.step for e in images] == [1, 2]
    assert (images[0].width, images[0].height) == (2 * 64, 48)  # cut3r-tiny's 64 x 48 grid of a 4:3 frame, twice


def test_without_tensorboard_one_warning_and_the_run_goes_on(tmp_path: Path) -> None:
    script = f"""
import sys
sys.modules["tensorboard"] = None  # as on a machine without the package: `import tensorboard` fails
sys.path.insert(0, {str(Path(__file__).parent)!r})
from pathlib import Path
from test_training_trainer import config, labelled, synthetic_frames
from fin3r_lib.training.trainer import Trainer
cfg = config(Path({str(tmp_path)!r}), model="cut3r-tiny", steps=1, replay=[], replay_fraction=0.0, tensorboard=True)
print(Trainer(cfg, [labelled(synthetic_frames(2))]).run(progress=False).step)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "1"
    warnings = [line for line in proc.stderr.splitlines() if "tensorboard" in line]
    assert len(warnings) == 1 and warnings[0].startswith("fin3r train: warning: tensorboard is not installed")
    assert (tmp_path / "run" / "log.jsonl").is_file() and not (tmp_path / "run" / "tensorboard").exists()
