"""`fin3r evaluate`: a model (and adapters) on a sequence with ground truth, model and system level.

Writes into `--out`: `results.json` (every metric, the configuration, model / checkpoint / adapter
hashes, dataset, versions), `results.md` (one table, differences to the first run with `--compare`)
and PNG plots (`depth_<run>.png`, `trajectory.png`, `depth_error_per_frame.png`).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from fin3r_lib.errors import InputError
from fin3r_lib.evaluation.crops import CROPS
from fin3r_lib.model_options import ModelOptions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of `fin3r evaluate`."""
    parser.add_argument("data", help="7-Scenes or TUM RGB-D folder, rgb/ + depth/ folder, or `fin3r extract` dataset")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--level", choices=("model", "system", "both"), default="both")
    ModelOptions.add_arguments(parser, adapter_help="adapter of the first run (default: none, the base model)")
    parser.add_argument("--compare", nargs="+", default=[], metavar="ADAPTER", help="more adapters, same frames")
    parser.add_argument("--alignment", default="median", help="depth alignment: none, median, scale, ...")
    parser.add_argument("--max-depth", type=float, help="ignore GT depth beyond this (metres; KITTI: 80)")
    parser.add_argument(
        "--crop", choices=CROPS, default="none", help="evaluation crop of the depth metrics (KITTI: garg or eigen)"
    )
    parser.add_argument("--window", type=int, default=4, help="views per multi-view window (model level)")
    parser.add_argument("--input-max-side", type=int, default=0, help="downscale frames (0: full size)")
    parser.add_argument("--max-frames", type=int, help="use only the first N frames")
    parser.add_argument("--depth-scale", type=float, default=1000.0, help="units per metre of rgb/+depth/ folders")
    parser.add_argument("--icp", action="store_true", help="refine point-map alignments by ICP")
    parser.add_argument(
        "--reference",
        choices=("voxel", "tsdf"),
        default="voxel",
        help="system level: fuse the GT cloud by voxel averaging or TSDF (mesh vertices)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _load(args: argparse.Namespace, adapter: str):
    from fin3r_lib.models.loader import load_model

    # the same seed for every run: identical random base weights with --checkpoint none
    return load_model(replace(ModelOptions.from_args(args), adapter=adapter), tool="cli")


def _evaluate_run(args: argparse.Namespace, adapter: str, frames: list, label: str) -> tuple[dict, dict]:
    """Metrics of one model (+ adapter) and what its plots need."""
    from fin3r_lib.evaluation.model_level import Examples, evaluate_depth, evaluate_multiview
    from fin3r_lib.evaluation.system_level import SystemEvaluator
    from fin3r_lib.runner import Runner, RunnerOptions

    model = _load(args, adapter)
    options = RunnerOptions(input_max_side=args.input_max_side)
    results: dict = {}
    extras: dict = {"examples": Examples()}
    bar = {"disable": args.quiet, "unit": "frame"}
    if args.level in ("model", "both"):
        runner = Runner(model, options)
        mono = evaluate_depth(
            runner,
            tqdm(frames, desc=f"{label} monocular", **bar),
            args.alignment,
            args.max_depth,
            extras["examples"],
            args.crop,
        )
        extras["per_frame"] = [row["abs_rel"] for row in mono.pop("per_frame")]
        results["model_level"] = {"monocular": mono}
        if sum(f.cam_to_world is not None for f in frames) >= args.window:
            results["model_level"]["multiview"] = evaluate_multiview(
                runner, frames, args.window, max_depth=args.max_depth, icp=args.icp, crop=args.crop
            )
    if args.level in ("system", "both"):
        evaluator = SystemEvaluator(
            args.alignment, args.max_depth, icp=args.icp, crop=args.crop, reference_fusion=args.reference
        )
        summary = Runner(model, options, [evaluator]).run(tqdm(frames, desc=f"{label} system", **bar))
        results["system_level"] = evaluator.results | {"skipped_frames": summary.skipped}
        extras["per_frame"] = extras.get("per_frame") or [row["abs_rel"] for row in evaluator.depth_rows]
        if evaluator.aligned_map is not None:
            extras["trajectory"] = evaluator.aligned_trajectory()
    return results, extras


def run(args: argparse.Namespace) -> int:
    """Run `fin3r evaluate`; prints where the results went."""
    from fin3r_lib.datasets import open_sequence
    from fin3r_lib.evaluation import plots
    from fin3r_lib.evaluation.report import file_sha256, versions, write_report

    sequence = open_sequence(args.data, depth_scale=args.depth_scale)
    frames = []
    for frame in sequence:
        if args.max_frames is not None and len(frames) >= args.max_frames:
            break
        frames.append(frame)
    if not frames:
        raise InputError(f"{args.data}: expected at least one frame, got none")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    adapters = [args.adapter, *args.compare]
    labels = [Path(a).stem if a else "base" for a in adapters]
    if len(set(labels)) != len(labels):
        labels = [f"{i}-{label}" for i, label in enumerate(labels)]
    runs, extras = {}, {}
    for label, adapter in zip(labels, adapters, strict=True):
        runs[label], extras[label] = _evaluate_run(args, adapter, frames, label)
        plots.plot_depth_examples(out / f"depth_{label}.png", extras[label]["examples"].items, label)
    plots.plot_error_curves(
        out / "depth_error_per_frame.png", {k: e["per_frame"] for k, e in extras.items()}, f"abs rel ({args.alignment})"
    )
    with_traj = {k: e["trajectory"] for k, e in extras.items() if "trajectory" in e}
    if with_traj:
        plots.plot_trajectories(
            out / "trajectory.png", {k: t[0] for k, t in with_traj.items()}, next(iter(with_traj.values()))[1]
        )
    document = {
        "dataset": {"path": str(args.data), "kind": sequence.kind, "frames": len(frames), "skipped": sequence.skipped},
        "model": {"name": args.model, "checkpoint": args.checkpoint, "checkpoint_sha256": file_sha256(args.checkpoint)},
        "adapters": {
            label: {"path": a or None, "sha256": file_sha256(a)} for label, a in zip(labels, adapters, strict=True)
        },
        "config": {k: v for k, v in vars(args).items() if not k.startswith("_")},
        "versions": versions(),
        "runs": runs,
    }
    json_path, _ = write_report(out, document)
    print(f"fin3r evaluate: {len(frames)} frames, runs {', '.join(labels)} -> {json_path}")
    return 0
