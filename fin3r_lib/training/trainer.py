"""The Fin3R training loop (nanoGPT spirit: `train_step` is the whole step, in one function).

Student = backbone + re-normalization adapter; AdamW on the trainable tensors only; linear warmup then
cosine decay; gradient accumulation and clipping; bf16 autocast on CUDA, fp32 on CPU; seeded and
bit-exactly deterministic on CPU (resuming included). Outputs in the run folder `out`:
`log.jsonl`, `tensorboard/`, `checkpoints/step-N/`, `adapter-last.safetensors` (+ `adapter-best`
when validating), each adapter with a `.json` beside it holding the training config and metrics.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from fin3r_lib.adapter import adapter_disabled, save_adapter
from fin3r_lib.data.frame import Frame
from fin3r_lib.evaluation.depth import frame_depth_errors
from fin3r_lib.models.base import ReconstructionModel
from fin3r_lib.models.loader import resolve_device
from fin3r_lib.training.config import TrainConfig
from fin3r_lib.training.data import (
    Draw,
    MixSampler,
    ReplaySample,
    SingleViewSample,
    augment_images,
    replay_sample,
    replay_windows,
    single_view_sample,
)
from fin3r_lib.training.distributed import SINGLE, Distributed
from fin3r_lib.training.losses import distillation_loss, gradient_loss, normalize_depth, replay_loss
from fin3r_lib.training.pseudo_label import PseudoLabel
from fin3r_lib.training.state import latest_checkpoint, save_checkpoint, set_rng_state
from fin3r_lib.training.student import (
    FrozenCheck,
    TrainingError,
    build_student,
    enable_gradient_checkpointing,
    trainable_parameters,
)

Labelled = tuple[Frame, PseudoLabel]


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warmup over `warmup_steps` to `lr`, then cosine decay to `min_lr` at `steps` (step from 0)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


@dataclass
class Batch:
    """One micro-batch on the device: images [N, S, 3, H, W] and the targets of its kind."""

    kind: str
    images: torch.Tensor
    target: torch.Tensor  # single view: labels [N, H, W]; replay: points [N, S, H, W, 3]
    mask: torch.Tensor
    ray_norm: torch.Tensor | None = None


class TrainingData:
    """Sources turned into model-grid samples (cached after first use) and drawn by a `MixSampler`."""

    def __init__(
        self,
        model: ReconstructionModel,
        cfg: TrainConfig,
        single_view: Sequence[Sequence[Labelled]],
        replay: Sequence[Sequence[Frame]],
    ) -> None:
        self.model, self.cfg = model, cfg
        for kind, given in (("single_view", single_view), ("replay", replay)):
            if len(given) != len(getattr(cfg, kind)):
                raise TrainingError(
                    f"{kind}: the config lists {len(getattr(cfg, kind))} sources, {len(given)} were given"
                )
        self.single_view = [list(s) for s in single_view]
        self.replay = [list(s) for s in replay]
        self.windows = [
            replay_windows(len(frames), src.views, src.stride)
            for frames, src in zip(self.replay, cfg.replay, strict=True)
        ]
        self.sampler = MixSampler(
            [len(s) for s in self.single_view],
            [s.weight for s in cfg.single_view],
            [len(w) for w in self.windows],
            [s.weight for s in cfg.replay],
            cfg.replay_fraction,
            cfg.seed,
        )
        self._single: dict[tuple[int, int], SingleViewSample] = {}
        self._replay: dict[tuple[int, int], ReplaySample] = {}

    def single(self, source: int, index: int) -> SingleViewSample:
        key = (source, index)
        if key not in self._single:
            frame, label = self.single_view[source][index]
            self._single[key] = single_view_sample(self.model, frame, label, flip=self.cfg.flip_labels)
        return self._single[key]

    def window(self, source: int, index: int) -> ReplaySample:
        key = (source, index)
        if key not in self._replay:
            frames = [self.replay[source][i] for i in self.windows[source][index]]
            self._replay[key] = replay_sample(self.model, frames)
        return self._replay[key]

    def batch(self, draw: Draw, seed: tuple[int, ...], device: torch.device, dist: Distributed = SINGLE) -> Batch:
        """The tensors of `draw` (this rank's share of its items) on `device`, augmented when configured."""
        share = dist.share(len(draw.items), "batch_size" if draw.kind == "single_view" else "replay_batch_size")
        indices = draw.items[share]
        if draw.kind == "single_view":
            items = [self.single(draw.source, i) for i in indices]
            images = torch.stack([s.image for s in items])[:, None]
            target = torch.stack([s.label for s in items])
            mask = torch.stack([s.mask for s in items])
            rays: torch.Tensor | None = torch.stack([s.ray_norm for s in items]).to(device)
        else:
            samples = [self.window(draw.source, i) for i in indices]
            images = torch.stack([s.images for s in samples])
            target = torch.stack([s.points for s in samples])
            mask = torch.stack([s.mask for s in samples])
            rays = None
        if self.cfg.augment:
            images = augment_images(images, seed, share.start, len(draw.items))
        return Batch(draw.kind, images.to(device), target.to(device), mask.to(device), rays)


def compute_loss(
    pred: dict[str, torch.Tensor], batch: Batch, cfg: TrainConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one micro-batch and its parts (VGGT: depth head for L_d, point head for L_p;
    CUT3R: the self-view head for L_d)."""
    if batch.kind == "single_view":
        depth, conf = pred["depth"][:, 0].float(), pred["depth_conf"][:, 0].float()
        loss = distillation_loss(depth, conf, batch.target, batch.mask, cfg.lam, batch.ray_norm)
        parts = {"distill": float(loss.detach())}
        if cfg.gradient_weight > 0:
            grad = gradient_loss(depth, batch.target, batch.mask, batch.ray_norm)
            parts["gradient"] = float(grad.detach())
            loss = loss + cfg.gradient_weight * grad
        return loss, parts
    points, conf = pred["world_points"].float(), pred["world_points_conf"].float()
    loss = cfg.replay_weight * replay_loss(points, conf, batch.target, batch.mask, cfg.lam)
    return loss, {"replay": float(loss.detach())}


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA for `auto`/`bf16`; nothing (fp32) on CPU or for `fp32`."""
    if device.type == "cuda" and precision in ("auto", "bf16"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_step(
    model: ReconstructionModel,
    optimizer: torch.optim.Optimizer,
    data: TrainingData,
    cfg: TrainConfig,
    step: int,
    device: torch.device,
    dist: Distributed = SINGLE,
) -> dict[str, float]:
    """One optimizer step: lr, `accumulation` micro-batches (forward, loss, backward), clip, AdamW.

    Under DDP (`model` wrapped, `dist` active) each rank runs its share of every micro-batch, gradients
    are averaged at the last micro-batch's backward, and the logged losses are the ranks' mean.
    """
    times = {"data": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    lr = learning_rate(step, cfg)
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    total, parts_sum = 0.0, {}
    for micro in range(cfg.accumulation):
        t0 = time.perf_counter()
        draw = data.sampler.draw(step, micro, cfg.batch_size, cfg.replay_batch_size)
        batch = data.batch(draw, (cfg.seed, step, micro), device, dist)
        t1 = time.perf_counter()
        sync = micro == cfg.accumulation - 1 or not dist.active  # DDP: all-reduce once, at the last backward
        with contextlib.nullcontext() if sync else model.no_sync():
            with autocast_context(device, cfg.precision):
                pred = model(batch.images)
            loss, parts = compute_loss(pred, batch, cfg)
            t2 = time.perf_counter()
            if not torch.isfinite(loss):
                raise TrainingError(f"step {step}: non-finite loss {loss.item()} ({draw.kind} source {draw.source})")
            (loss / cfg.accumulation).backward()
        t3 = time.perf_counter()
        total += float(loss.detach()) / cfg.accumulation
        for k, v in parts.items():
            parts_sum[k] = parts_sum.get(k, 0.0) + v / cfg.accumulation
        times["data"] += t1 - t0
        times["forward"] += t2 - t1
        times["backward"] += t3 - t2
    t4 = time.perf_counter()
    params = [p for g in optimizer.param_groups for p in g["params"]]
    clip = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
    optimizer.step()
    times["optimizer"] = time.perf_counter() - t4
    losses = dist.mean({"loss": total, **parts_sum})
    return {**losses, "lr": lr, "grad_norm": grad_norm, **{f"time_{k}": v for k, v in times.items()}}


def patch_token_norm(model: ReconstructionModel, images: torch.Tensor, base: bool = False) -> float:
    """Mean L2 norm of the encoder's output tokens (the paper's Figure 3 measure); `base`: adapter off."""
    ctx = adapter_disabled(model) if base else contextlib.nullcontext()
    with torch.no_grad(), ctx:
        return float(torch.linalg.vector_norm(model.encode(images).float(), dim=-1).mean())


def make_optimizer(params: dict[str, torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the trainable tensors only (no weight decay on 1-D tensors)."""
    decay = [p for p in params.values() if p.dim() >= 2]
    no_decay = [p for p in params.values() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


@dataclass
class TrainResult:
    """What a run left: steps done, last metrics, validation, the files written, frozen-check size."""

    step: int
    history: list[dict[str, float]] = field(default_factory=list)
    validation: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    frozen_checked: int = 0


class Trainer:
    """A training run over in-memory sources (`fin3r_lib.training.run` builds them from a config).

    With an active `dist` (torchrun), every rank trains its share of each micro-batch and only rank 0
    validates and writes files.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        single_view: Sequence[Sequence[Labelled]] = (),
        replay: Sequence[Sequence[Frame]] = (),
        validation: Sequence[Labelled] = (),
        model: ReconstructionModel | None = None,
        dist: Distributed = SINGLE,
    ) -> None:
        self.cfg, self.dist = cfg, dist
        dist.share(cfg.batch_size, "batch_size")  # every micro-batch splits evenly over the processes
        if cfg.replay:
            dist.share(cfg.replay_batch_size, "replay_batch_size")
        self.device = resolve_device(cfg.device)
        seed_everything(cfg.seed)
        self.model = model or build_student(cfg.model_options(), cfg.trainable, cfg.rank, cfg.alpha)
        self.frozen = FrozenCheck(self.model)
        if cfg.gradient_checkpointing:
            enable_gradient_checkpointing(self.model)
        self.params = trainable_parameters(self.model)
        if not self.params:
            raise TrainingError("the student has no trainable tensor")
        self.forward_model = dist.wrap(self.model, self.device)  # DDP under torchrun, else the model
        self.optimizer = make_optimizer(self.params, cfg)
        self.data = TrainingData(self.model, cfg, single_view, replay)
        self.validation = list(validation)
        self.out = Path(cfg.out)
        self.step = 0
        self.best: float | None = None

    # ----- state -------------------------------------------------------------------------------
    def resume(self) -> bool:
        """Continue from the newest checkpoint in the run folder; False when there is none."""
        state = latest_checkpoint(self.out / "checkpoints")
        if state is None:
            return False
        missing = sorted(set(self.params) - set(state.params))
        if missing or set(state.params) - set(self.params):
            raise TrainingError(f"checkpoint does not match the student's trainable tensors (missing {missing[:3]})")
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(state.params[name])
        self.optimizer.load_state_dict(state.optimizer)
        set_rng_state(state.rng["tensors"], state.rng["meta"])
        self.step = state.step
        self.best = state.extra.get("best")
        return True

    def save(self) -> Path:
        """Write a resume checkpoint of the current step."""
        extra = {"config": self.cfg.to_dict(), "best": self.best, "sampler_step": self.step}
        return save_checkpoint(
            self.out / "checkpoints", self.step, self.params, self.optimizer, extra, self.cfg.keep_checkpoints
        )

    # ----- validation --------------------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        """Held-out frames: distillation loss and depth AbsRel / delta1 against the labels (median-aligned)."""
        if not self.validation:
            return {}
        losses, abs_rel, delta1 = [], [], []
        with torch.no_grad():
            for frame, label in self.validation:
                s = single_view_sample(self.model, frame, label)
                with autocast_context(self.device, self.cfg.precision):
                    pred = self.model(s.image[None, None].to(self.device))
                depth, conf = pred["depth"][:, 0].float().cpu(), pred["depth_conf"][:, 0].float().cpu()
                loss = distillation_loss(depth, conf, s.label[None], s.mask[None], self.cfg.lam, s.ray_norm[None])
                losses.append(float(loss))
                gt = np.where(s.mask.numpy(), s.label.numpy(), 0.0)
                errors = frame_depth_errors(depth[0].numpy(), gt, alignment="median")
                abs_rel.append(errors["abs_rel"])
                delta1.append(errors["delta1"])
        return {
            "val_distill": float(np.mean(losses)),
            "val_abs_rel": float(np.mean(abs_rel)),
            "val_delta1": float(np.mean(delta1)),
        }

    # ----- outputs -----------------------------------------------------------------------------
    def save_output(self, name: str, metrics: dict[str, float]) -> Path:
        """The adapter (config and metrics in its metadata; encoder mode: the trainable tensors), and a JSON of both."""
        self.out.mkdir(parents=True, exist_ok=True)
        info = {"step": self.step, "config": self.cfg.to_dict(), "metrics": metrics}
        if self.cfg.trainable == "adapter":
            path = save_adapter(self.model, self.out / f"adapter-{name}.safetensors", metadata=info)
        else:
            from safetensors.torch import save_file

            path = self.out / f"encoder-{name}.safetensors"
            save_file({k: v.detach().cpu().contiguous() for k, v in self.params.items()}, str(path))
        path.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
        return path

    def _log(self, record: dict[str, Any], writer: Any) -> None:
        with (self.out / "log.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")
        if writer is not None:
            for k, v in record.items():
                if k != "step" and isinstance(v, float):
                    writer.add_scalar(k, v, record["step"])

    # ----- the run -----------------------------------------------------------------------------
    def run(self, resume: bool = False, max_steps: int | None = None, progress: bool = True) -> TrainResult:
        """Train to `cfg.steps` (or stop after `max_steps` more); checkpoints, logs, validation, adapters.

        A run folder with checkpoints is continued only with `resume` (never overwritten silently).
        The frozen tensors are verified bit-identical to the base at the end.
        """
        existing = latest_checkpoint(self.out / "checkpoints") is not None
        if existing and not resume:
            raise TrainingError(f"{self.out} already holds checkpoints: pass --resume, or choose another `out`")
        if resume:
            self.resume()
        main = self.dist.is_main
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(json.dumps(self.cfg.to_dict(), indent=2) + "\n")
        writer = open_tensorboard(self.out / "tensorboard") if self.cfg.tensorboard and main else None
        end = self.cfg.steps if max_steps is None else min(self.cfg.steps, self.step + max_steps)
        result = TrainResult(self.step)
        self.model.eval()  # no dropout / drop-path anywhere: the frozen parts behave as at inference
        bar = tqdm(total=end, initial=self.step, desc="train", unit="step", disable=not (progress and main))
        while self.step < end:
            metrics = train_step(
                self.forward_model, self.optimizer, self.data, self.cfg, self.step, self.device, self.dist
            )
            self.step += 1
            result.history.append(metrics)
            if main and (self.step % self.cfg.log_every == 0 or self.step == end):
                record = {"step": self.step, **metrics, **self._token_norms()}
                if self.cfg.val_every and self.step % self.cfg.val_every == 0:
                    record.update(self._validate_and_keep_best())
                self._log(record, writer)
                if writer is not None:
                    self._log_preview(writer)
                bar.set_postfix(loss=f"{metrics['loss']:.4f}")
            if main and self.cfg.checkpoint_every and self.step % self.cfg.checkpoint_every == 0:
                self.save()
            bar.update(1)
        bar.close()
        result.frozen_checked = self.frozen.verify(self.model)
        result.step = self.step
        if not main:
            return result
        if self.validation:
            result.validation = self._validate_and_keep_best()
        result.files["last"] = str(self.save_output("last", result.validation))
        result.files["checkpoint"] = str(self.save())
        if (self.out / "adapter-best.safetensors").is_file():
            result.files["best"] = str(self.out / "adapter-best.safetensors")
        if writer is not None:
            writer.close()
        return result

    def _validate_and_keep_best(self) -> dict[str, float]:
        val = self.validate()
        if val and (self.best is None or val["val_distill"] < self.best):
            self.best = val["val_distill"]
            if self.cfg.trainable == "adapter":
                self.save_output("best", val)
        return val

    def _log_preview(self, writer: Any) -> None:
        """Student vs teacher depth of the first single-view item (normalized as in the loss) as an image."""
        if not self.data.single_view:
            return
        sample = self.data.single(0, 0)
        with torch.no_grad(), autocast_context(self.device, self.cfg.precision):
            depth = self.model(sample.image[None, None].to(self.device))["depth"][0, 0].float().cpu()
        depth = depth.reshape(sample.label.shape)
        pred = normalize_depth(depth[None], sample.mask[None], sample.ray_norm[None])[0][0]
        writer.add_image("depth/student_teacher", depth_preview(pred, sample.label, sample.mask), self.step)

    def _token_norms(self) -> dict[str, float]:
        if not self.data.single_view:
            return {}
        images = self.data.single(0, 0).image[None, None].to(self.device)
        out = {"token_norm": patch_token_norm(self.model, images)}
        if self.cfg.trainable == "adapter":
            out["token_norm_base"] = patch_token_norm(self.model, images, base=True)
        return out


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def open_tensorboard(folder: Path) -> Any:
    """A TensorBoard SummaryWriter, or None with a one-line warning on stderr when tensorboard is not
    installed (the run goes on; everything is still in log.jsonl)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        print(
            "fin3r train: warning: tensorboard is not installed (pip install tensorboard, or the train extra): "
            "TensorBoard logging off, metrics in log.jsonl only",
            file=sys.stderr,
        )
        return None
    return SummaryWriter(str(folder))


def depth_preview(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Student and teacher depth [H, W] side by side as one grey image [1, H, 2W] in [0, 1], both scaled
    by the teacher's valid range (invalid teacher pixels black), for TensorBoard's `add_image`."""
    valid = teacher[mask]
    lo, hi = (float(valid.min()), float(valid.max())) if valid.numel() else (0.0, 1.0)
    span = max(hi - lo, 1e-8)
    student = ((student - lo) / span).clamp(0.0, 1.0)
    teacher = torch.where(mask, ((teacher - lo) / span).clamp(0.0, 1.0), torch.zeros_like(teacher))
    return torch.cat([student, teacher], dim=-1)[None].float().cpu()
