"""Fin3R distillation trainer: step time split and peak memory, adapter vs encoder, with/without checkpointing.

Each configuration runs in a fresh child process (`--one CONFIG`, so peaks do not mask each other).
The child builds a `Trainer` on the CPU (the student at random weights, `checkpoint: none`) over
in-memory synthetic RGB-D frames of SIZE x SIZE labelled by the sensor teacher: one single-view
source, micro-batches of 2 images, no replay, no augmentation. VGGT's preprocessing target is set to
SIZE, so the model grid is SIZE x SIZE. Every sample is put on the model grid before anything is
measured; the process's RSS then is the baseline (model, the trainer's copy of the frozen tensors,
data). One warm-up `train_step` (not timed), then STEPS timed ones: each step's wall time and the
trainer's own split (data; forward, loss included; backward; optimizer: clipping and AdamW). Peak
memory is the process's high-water mark (`ru_maxrss`) after the last step; the training increment is
peak minus baseline (activations, gradients, AdamW state).

Configurations: `adapter` / `encoder` (`trainable`), each also with `gradient_checkpointing`
(`+ckpt`). Prints one row per configuration and the ratios against the targets, all memory ratios
on the training increment (not the absolute peak): adapter <= 0.6x encoder (no checkpointing);
checkpointing <= 0.5x none (per mode); non-model overhead, the step's wall time outside forward and
backward as a share of it (data, optimizer and the rest of `train_step`), <= 5 % (per configuration).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch
from child_measure import rss_bytes

#: configuration name -> (trainable, gradient_checkpointing)
CONFIGS = {
    "adapter": ("adapter", False),
    "adapter+ckpt": ("adapter", True),
    "encoder": ("encoder", False),
    "encoder+ckpt": ("encoder", True),
}
BATCH = 2
MIB = 2**20


def synthetic_frames(size: int, count: int) -> list:
    """RGB-D frames of a slanted textured plane, SIZE x SIZE, with intrinsics."""
    from fin3r_lib.data.frame import Frame

    k = np.array([[size, 0.0, (size - 1) / 2], [0.0, size, (size - 1) / 2], [0.0, 0.0, 1.0]])
    v, u = np.mgrid[0:size, 0:size]
    frames = []
    for i in range(count):
        depth = (1.5 + 0.004 * u + 0.002 * v + 0.1 * i).astype(np.float32)
        rgb = np.stack([(u * 2 + 30 * i) % 256, (v * 3) % 256, ((u + v) * 5) % 256], axis=-1).astype(np.uint8)
        frames.append(Frame(rgb=rgb, stamp=float(i), intrinsics=k, index=i, depth=depth))
    return frames


def one(config: str, model: str, steps: int, size: int) -> dict:
    """One configuration in this process: per-step times, baseline RSS and peak RSS."""
    from fin3r_lib.training.config import SourceConfig, TrainConfig
    from fin3r_lib.training.pseudo_label import pseudo_label
    from fin3r_lib.training.student import count_trainable
    from fin3r_lib.training.teachers.sensor import SensorTeacher
    from fin3r_lib.training.trainer import Trainer, train_step

    trainable, checkpointing = CONFIGS[config]
    cfg = TrainConfig(
        model=model,
        checkpoint="none",
        trainable=trainable,
        gradient_checkpointing=checkpointing,
        single_view=[SourceConfig(path="memory")],
        batch_size=BATCH,
        steps=1 + steps,
        warmup_steps=1,
        device="cpu",
        tensorboard=False,
    )
    frames = synthetic_frames(size, BATCH)
    labels = [pseudo_label(out, f.intrinsics) for f, out in zip(frames, SensorTeacher().label(frames), strict=True)]
    trainer = Trainer(cfg, single_view=[list(zip(frames, labels, strict=True))])
    trainer.model.config = dataclasses.replace(trainer.model.config, image_size=size)
    for i in range(len(frames)):
        trainer.data.single(0, i)
    trainer.model.eval()  # as Trainer.run
    base = rss_bytes()
    times = []
    for step in range(1 + steps):
        start = time.perf_counter()
        metrics = train_step(trainer.model, trainer.optimizer, trainer.data, cfg, step, trainer.device)
        wall = time.perf_counter() - start
        if step > 0:
            times.append({"wall": wall, **{k[5:]: v for k, v in metrics.items() if k.startswith("time_")}})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"config": config, "trainable": count_trainable(trainer.model), "times": times, "base": base, "peak": peak}


def run(config: str, model: str, steps: int, size: int) -> dict:
    """`one` in a fresh child process (its stderr passes through)."""
    cmd = [sys.executable, __file__, "--one", config, "--model", model, "--steps", str(steps), "--size", str(size)]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def summary(res: dict) -> dict[str, float]:
    """Totals over the timed steps: wall, split, overhead share; memory increment."""
    total = {k: sum(t[k] for t in res["times"]) for k in ("wall", "data", "forward", "backward", "optimizer")}
    n = len(res["times"])
    return {
        **{k: v / n for k, v in total.items()},
        "overhead": (total["wall"] - total["forward"] - total["backward"]) / total["wall"],
        "increment": res["peak"] - res["base"],
    }


def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vggt-1b", help="a VGGT variant (vggt-tiny for a quick check)")
    parser.add_argument("--steps", type=int, default=2, help="timed steps after 1 warm-up step")
    parser.add_argument("--size", type=int, default=224, help="image and model-grid side (a multiple of 14)")
    parser.add_argument("--one", choices=CONFIGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.model, args.steps, args.size)))
        return
    print(
        f"{args.model}, random weights, CPU, torch threads {torch.get_num_threads()}: single-view micro-batches of "
        f"{BATCH} images {args.size}x{args.size}, mean of {args.steps} steps after 1 warm-up"
    )
    print(
        f"{'config':>12} {'trainable':>11} {'step s':>8} {'data s':>7} {'fwd s':>8} {'bwd s':>8} {'opt s':>7} "
        f"{'overhead':>8} {'base MiB':>9} {'peak MiB':>9} {'train MiB':>9}"
    )
    rows = {}
    for config in CONFIGS:
        res = run(config, args.model, args.steps, args.size)
        s = rows[config] = summary(res)
        print(
            f"{config:>12} {res['trainable']:>11,} {s['wall']:>8.3f} {s['data']:>7.3f} {s['forward']:>8.3f} "
            f"{s['backward']:>8.3f} {s['optimizer']:>7.3f} {100 * s['overhead']:>7.2f}% {res['base'] / MIB:>9.0f} "
            f"{res['peak'] / MIB:>9.0f} {s['increment'] / MIB:>9.0f}",
            flush=True,
        )
    print("ratios (memory: training increment = peak - baseline RSS):")
    pairs = [("adapter", "encoder", 0.6), ("adapter+ckpt", "adapter", 0.5), ("encoder+ckpt", "encoder", 0.5)]
    for num, den, target in pairs:
        ratio = rows[num]["increment"] / max(rows[den]["increment"], 1)
        print(f"  memory {num} / {den}: {ratio:.2f}x (target <= {target}x) {verdict(ratio, target)}")
    for config, s in rows.items():
        print(
            f"  non-model overhead {config}: {100 * s['overhead']:.2f}% (target <= 5%) {verdict(s['overhead'], 0.05)}"
        )


if __name__ == "__main__":
    main()
