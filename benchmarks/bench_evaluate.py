"""Benchmark of the evaluation: system-level overhead as a fraction of model time, and point-map
metrics on 1M-point clouds against a plain scipy cKDTree baseline. Prints a table.

Usage: python benchmarks/bench_evaluate.py [--model vggt-tiny] [--frames 10] [--input-max-side 224] [--no-normals]
(needs ../shared/data/7scenes-redkitchen-150-199 for the overhead part; random weights).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

from fin3r_lib.datasets import open_sequence
from fin3r_lib.evaluation.pointmap import pointmap_metrics
from fin3r_lib.evaluation.system_level import SystemEvaluator
from fin3r_lib.model_options import ModelOptions
from fin3r_lib.models import load_model
from fin3r_lib.runner import Runner, RunnerOptions

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "7scenes-redkitchen-150-199"


def bench_pointmap(n: int = 1_000_000) -> tuple[float, float]:
    """Seconds of pointmap_metrics (no normals) and of two plain cKDTree queries on the same clouds."""
    rng = np.random.default_rng(0)
    pred, gt = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    t0 = time.perf_counter()
    pointmap_metrics(pred, gt, normals=False)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    cKDTree(gt).query(pred, k=1, workers=-1)
    cKDTree(pred).query(gt, k=1, workers=-1)
    return ours, time.perf_counter() - t0


def bench_overhead(model_name: str, frames: int, max_side: int, device: str, normals: bool) -> dict[str, float]:
    """Model time and evaluator overhead of one system-level run (NC too when `normals`)."""
    # random weights made usable (positive focal lengths); build_model's raw random VGGT rejects every frame
    model = load_model(ModelOptions(model_name, "none", device=device, seed=0))
    sequence = list(open_sequence(DATA))[:frames]
    evaluator = SystemEvaluator(normals=normals)
    Runner(model, RunnerOptions(input_max_side=max_side), [evaluator]).run(sequence)
    r = evaluator.results
    return {
        "model_ms": r["latency_model"]["mean_ms"],
        "overhead_ms": 1000 * r["overhead_s"] / r["frames"],
        "ratio": r["overhead_ratio"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="vggt-tiny")
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--input-max-side", type=int, default=224)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--no-normals", action="store_true", help="system level without normal consistency")
    args = parser.parse_args()
    ours, baseline = bench_pointmap(args.points)
    print("| benchmark | value |\n|---|---|")
    print(f"| Acc/Comp on {args.points:,} points, ours (s) | {ours:.2f} |")
    print(f"| same, plain cKDTree baseline (s) | {baseline:.2f} |")
    print(f"| ours / baseline | {ours / baseline:.2f} |")
    if DATA.is_dir():
        o = bench_overhead(args.model, args.frames, args.input_max_side, args.device, not args.no_normals)
        print(f"| {args.model} model time per frame (ms) | {o['model_ms']:.1f} |")
        nc = "without" if args.no_normals else "with"
        print(f"| system-level evaluator overhead per frame, {nc} NC (ms) | {o['overhead_ms']:.1f} |")
        print(f"| overhead / model time (target <= 0.1) | {o['ratio']:.3f} |")


if __name__ == "__main__":
    main()
