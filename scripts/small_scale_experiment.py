"""Fin3R's effect at small scale, on the shared 7-Scenes frames, on a CPU in a few minutes (not a CI test).

1. Base: vggt-tiny from random weights (`--seed`, default 0), every tensor trained (`trainable: all`, allowed for
   this script only: it stands in for the backbone's original pre-training) on the last frames of
   the sequence (`--base-first`..), with ground-truth supervision on windows of views: depth
   (distillation loss against the sensor depth), point maps (the replay loss) and cameras (an L1 loss
   on VGGT's pose encoding: translation in the window's normalized units, quaternion up to sign,
   fields of view). Written as a checkpoint that `--checkpoint` loads.
2. Fin3R: `fin3r label` (sensor teacher) and `fin3r train` (training/configs/tiny-cpu.yaml: the adapter
   only, decoder and heads frozen) on other frames (`--tune-first`.., `--tune-count`), replaying the
   base's multi-view frames as the paper replays the pre-training data.
3. `fin3r evaluate` base vs base + adapter on the held-out first `--held-out` frames: monocular depth
   (AbsRel, delta1, median alignment) and multi-view windows (pose ATE after Sim(3), pose AUC, point
   maps); the table is printed.

Usage: .venv/bin/python scripts/small_scale_experiment.py [--data DIR] [--out DIR] [--base-steps N] ...
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from fin3r_lib.data.frame import Frame
from fin3r_lib.datasets import open_sequence
from fin3r_lib.geometry import rigid_inverse, transform_points, unproject_depth
from fin3r_lib.model_options import ModelOptions
from fin3r_lib.models.base import ReconstructionModel
from fin3r_lib.models.loader import load_model
from fin3r_lib.models.vggt.pose_encoding import extri_intri_to_pose_encoding
from fin3r_lib.training.data import to_model_grid
from fin3r_lib.training.losses import distillation_loss, point_scale, replay_loss

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "7scenes-redkitchen-150-199"
MODEL = "vggt-tiny"
# rows of the printed table: (section, key in fin3r evaluate's results, label, better when)
TABLE = (
    ("monocular", "abs_rel", "depth AbsRel (median-aligned)", "lower"),
    ("monocular", "delta1", "depth delta1 < 1.25", "higher"),
    ("multiview", "video_abs_rel", "video depth AbsRel (one scale per window)", "lower"),
    ("multiview", "ate", "pose ATE after Sim(3) (m)", "lower"),
    ("multiview", "auc@20", "relative pose AUC@20 (%)", "higher"),
    ("multiview", "acc", "point map accuracy (m, after Sim(3))", "lower"),
    ("multiview", "comp", "point map completeness (m, after Sim(3))", "lower"),
)


def window_targets(model: ReconstructionModel, frames: list[Frame]) -> dict[str, torch.Tensor]:
    """Ground truth of a window on the model grid: images, depth, mask, points and cameras in the first view's frame."""
    images, mappings = model.prepare([f.rgb for f in frames])
    first_to_world = np.asarray(frames[0].cam_to_world, np.float64)
    depths, masks, points, extrinsics, intrinsics = [], [], [], [], []
    for frame, mapping in zip(frames, mappings, strict=True):
        depth = np.asarray(frame.depth, np.float32)
        valid = np.isfinite(depth) & (depth > 0)
        depth_m, mask_m = to_model_grid(mapping, np.where(valid, depth, 0.0), valid)
        k_m = mapping.intrinsics_to_model(frame.intrinsics)
        cam_to_first = rigid_inverse(first_to_world) @ np.asarray(frame.cam_to_world, np.float64)
        pts = transform_points(unproject_depth(depth_m, k_m), cam_to_first)
        depths.append(np.where(mask_m, depth_m, 0.0))
        masks.append(mask_m)
        points.append(np.where(mask_m[..., None], pts, 0.0))
        extrinsics.append(rigid_inverse(cam_to_first)[:3])  # camera-from-first, as VGGT predicts
        intrinsics.append(k_m)

    def tensor(values: list[np.ndarray], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.from_numpy(np.stack(values)).to(dtype)

    return {
        "images": images,
        "depth": tensor(depths),
        "mask": tensor(masks, torch.bool),
        "points": tensor(points),
        "extrinsics": tensor(extrinsics),
        "intrinsics": tensor(intrinsics),
    }


def camera_loss(pose_enc: torch.Tensor, points: torch.Tensor, target: dict[str, torch.Tensor]) -> torch.Tensor:
    """L1 between predicted and true pose encodings [S, 9]: translations each divided by its own point-map
    scale (the scene's scale is arbitrary), quaternions compared up to sign, fields of view in radians."""
    hw = tuple(target["images"].shape[-2:])
    true = extri_intri_to_pose_encoding(target["extrinsics"], target["intrinsics"], hw)
    mask = target["mask"][None]
    t_pred = pose_enc[:, :3] / point_scale(points[None], mask)
    t_true = true[:, :3] / point_scale(target["points"][None], mask)
    q_pred, q_true = pose_enc[:, 3:7], true[:, 3:7]
    q_err = torch.minimum((q_pred - q_true).abs().sum(-1), (q_pred + q_true).abs().sum(-1))
    return (t_pred - t_true).abs().sum(-1).mean() + q_err.mean() + (pose_enc[:, 7:] - true[:, 7:]).abs().sum(-1).mean()


def train_base(
    frames: list[Frame], steps: int, views: int, lr: float, seed: int
) -> tuple[ReconstructionModel, list[float]]:
    """vggt-tiny from random weights of `seed`, every tensor trained on windows of `frames`; losses per step."""
    model = load_model(ModelOptions(MODEL, "none", device="cpu", seed=seed))
    model.requires_grad_(True)
    model.eval()  # no dropout anywhere, as in the Fin3R trainer
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    targets = {}
    losses = []
    for step in range(steps):
        stride = int(rng.integers(1, 3))
        start = int(rng.integers(0, len(frames) - (views - 1) * stride))
        key = (start, stride)
        if key not in targets:
            targets[key] = window_targets(model, frames[start : start + (views - 1) * stride + 1 : stride])
        t = targets[key]
        pred = model(t["images"])
        depth_loss = distillation_loss(pred["depth"][0], pred["depth_conf"][0], t["depth"], t["mask"])
        point_loss = replay_loss(pred["world_points"], pred["world_points_conf"], t["points"][None], t["mask"][None])
        loss = depth_loss + point_loss + camera_loss(pred["pose_enc"][0], pred["world_points"][0], t)
        if not torch.isfinite(loss):
            raise RuntimeError(f"base pre-training step {step}: non-finite loss {float(loss)}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
    return model.requires_grad_(False), losses


def fin3r(*args: str) -> None:
    """Run a `fin3r` subcommand, stopping the experiment if it fails."""
    subprocess.run([sys.executable, "-m", "fin3r_lib.cli.main", *args], check=True)


def print_table(results: dict) -> None:
    """Base vs base + adapter for the TABLE rows, with the change and whether it went the better way."""
    runs = results["runs"]
    names = list(runs)
    print(f"\n| metric (held-out frames) | {' | '.join(names)} | change | better |")
    print(f"|---|{'---|' * len(names)}---|---|")
    for section, key, label, better in TABLE:
        values = [runs[n]["model_level"].get(section, {}).get(key) for n in names]
        if any(v is None for v in values):
            continue
        change = values[-1] - values[0]
        improved = change < 0 if better == "lower" else change > 0
        cells = " | ".join(f"{v:.4f}" for v in values)
        print(f"| {label} | {cells} | {change:+.4f} | {'yes' if improved else 'no'} ({better} is better) |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="7-Scenes / TUM RGB-D folder with depth and poses")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "small-scale-experiment", help="new run folder")
    parser.add_argument("--held-out", type=int, default=15, help="first frames held out for the evaluation")
    parser.add_argument("--tune-first", type=int, default=15, help="first frame of the Fin3R tuning frames")
    parser.add_argument("--tune-count", type=int, default=15, help="Fin3R tuning frames (3 of them validate)")
    parser.add_argument("--base-first", type=int, default=30, help="first frame of the base pre-training frames")
    parser.add_argument("--base-steps", type=int, default=300)
    parser.add_argument("--base-lr", type=float, default=1e-3)
    parser.add_argument("--views", type=int, default=3, help="views per base pre-training window")
    parser.add_argument("--tune-steps", type=int, default=100)
    parser.add_argument("--window", type=int, default=5, help="views per multi-view evaluation window")
    parser.add_argument("--seed", type=int, default=0, help="base weights, window draws and Fin3R training")
    parser.add_argument(
        "--replay-fraction", type=float, default=0.1, help="share of replay batches in the Fin3R run (recipe: 0.1)"
    )
    args = parser.parse_args()
    if args.out.exists():
        parser.error(f"{args.out} exists: give a new --out")
    torch.manual_seed(args.seed)
    frames = list(open_sequence(args.data))
    base_frames = frames[args.base_first :]
    start = time.perf_counter()
    model, losses = train_base(base_frames, args.base_steps, args.views, args.base_lr, args.seed)
    args.out.mkdir(parents=True)
    base = args.out / "base.safetensors"
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(base))
    tenth = max(1, len(losses) // 10)
    print(
        f"1/3 base: {MODEL} trained on frames {args.base_first}-{len(frames) - 1} for {args.base_steps} steps "
        f"({time.perf_counter() - start:.0f} s): loss {np.mean(losses[:tenth]):.4f} (first tenth) -> "
        f"{np.mean(losses[-tenth:]):.4f} (last tenth) -> {base}",
        flush=True,
    )
    labels, train = args.out / "labels", args.out / "train"
    fin3r("label", str(args.data), "--out", str(labels), "--quiet")
    fin3r(
        "train", str(REPO / "training" / "configs" / "tiny-cpu.yaml"), f"checkpoint={base}", f"seed={args.seed}",
        f"single_view.0.path={args.data}", f"single_view.0.labels={labels}",
        f"single_view.0.first={args.tune_first}", f"single_view.0.count={args.tune_count}",
        f"replay.0.path={args.data}", f"replay.0.first={args.base_first}", f"replay_fraction={args.replay_fraction}",
        "val_frames=3", "val_every=0",
        f"steps={args.tune_steps}", f"out={train}", "--quiet",
    )  # fmt: skip
    adapter = train / "adapter-last.safetensors"
    print(
        f"2/3 Fin3R: adapter trained on frames {args.tune_first}-{args.tune_first + args.tune_count - 1} -> {adapter}"
    )
    evaluation = args.out / "evaluate"
    fin3r(
        "evaluate", str(args.data), "--out", str(evaluation), "--level", "model", "--model", MODEL,
        "--checkpoint", str(base), "--compare", str(adapter), "--max-frames", str(args.held_out),
        "--window", str(args.window), "--device", "cpu", "--quiet",
    )  # fmt: skip
    print(f"3/3 evaluation on the held-out frames 0-{args.held_out - 1} -> {evaluation}")
    print_table(json.loads((evaluation / "results.json").read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
