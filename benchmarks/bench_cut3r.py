"""CUT3R streaming cost over a long sequence: per-frame time and process memory at frames 10, 100, 1000.

Streams `--frames` frames through `cut3r-tiny` on the CPU (random weights; the cost does not depend
on them) and prints, at each checkpoint frame, the median step time over the preceding `--window`
frames and the resident set size (RSS), then the ratios against frame 10 measured in the same run.
Targets: memory 1000/10 <= 1.05, time 1000/10 <= 1.1.

    .venv/bin/python benchmarks/bench_cut3r.py [--frames 1000] [--height 120 --width 160]

`--paths`: instead, one step's time of the node path (heads depth and camera) and of bf16 autocast
(`precision: bf16`) as ratios against the full-output fp32 path in the same process, with the
outputs' max difference (0 where nothing changed numerically). `--paths --compile` adds the node path
with the transformer blocks compiled (`fin3r_lib.models.compile`, inductor; the first step compiles and
is not timed) against the eager node path.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from fin3r_lib.models.loader import build_model

CHECKPOINTS = (10, 100, 1000)


def rss_mib() -> float:
    """Resident set size of this process in MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def step_seconds(model: torch.nn.Module, image: torch.Tensor, heads: tuple[str, ...] | None, repeats: int) -> tuple:
    """Median seconds of one `step_tensor` from the initial state, and its outputs."""
    times = []
    with torch.inference_mode():
        for _ in range(repeats):
            t0 = time.perf_counter()
            out, _ = model.step_tensor(image, model.initial_state(1), heads=heads)
            times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def compare_paths(args: argparse.Namespace) -> None:
    """Node path and bf16 autocast against the full-output fp32 path (see the module docstring)."""
    torch.manual_seed(0)
    model = build_model(args.model)
    rgb = np.random.default_rng(0).integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    image = model.prepare_frame(rgb)[0][None]  # on the model's grid, as the node feeds it
    base_t, base = step_seconds(model, image, None, args.repeats)
    node_t, node = step_seconds(model, image, ("depth", "camera"), args.repeats)
    fp32 = model.autocast_dtype
    model.autocast_dtype = torch.bfloat16
    bf16_t, bf16 = step_seconds(model, image, None, args.repeats)
    model.autocast_dtype = fp32
    rows = [
        ("node heads", node_t, node, base_t, base, "full fp32"),
        ("bf16 autocast", bf16_t, bf16, base_t, base, "full fp32"),
    ]
    if args.compile:
        from fin3r_lib.models.compile import compile_blocks

        compile_blocks(model)
        step_seconds(model, image, ("depth", "camera"), 1)  # compiles
        compiled_t, compiled = step_seconds(model, image, ("depth", "camera"), args.repeats)
        rows.append(("compiled node", compiled_t, compiled, node_t, node, "eager node"))
    for name, t, out, ref_t, ref, ref_name in rows:
        diff = max(float((out[k] - ref[k]).abs().max()) for k in out)
        print(
            f"{name:14s}: {t * 1e3:9.1f} ms vs {ref_name} {ref_t * 1e3:9.1f} ms, "
            f"ratio {t / ref_t:.3f}, max diff {diff:.3g}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--window", type=int, default=10, help="frames per median time")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--paths", action="store_true", help="compare step paths instead (module docstring)")
    parser.add_argument("--model", default="cut3r-tiny", help="with --paths: the variant (random weights)")
    parser.add_argument("--repeats", type=int, default=5, help="with --paths: steps per median")
    parser.add_argument("--compile", action="store_true", help="with --paths: also the compiled node path")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.paths:
        compare_paths(args)
        return
    torch.manual_seed(0)
    model = build_model("cut3r-tiny")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (args.height, args.width, 3), dtype=np.uint8) for _ in range(16)]
    stream = model.new_stream()
    checkpoints = [c for c in CHECKPOINTS if c <= args.frames]
    times: list[float] = []
    results: dict[int, tuple[float, float]] = {}
    for i in range(1, args.frames + 1):
        t0 = time.perf_counter()
        stream.step(images[i % len(images)])
        times.append(time.perf_counter() - t0)
        if i in checkpoints:
            gc.collect()
            results[i] = (statistics.median(times[-args.window :]), rss_mib())
            step_ms, rss = results[i][0] * 1e3, results[i][1]
            print(f"frame {i:5d}: {step_ms:7.2f} ms/frame (median of {args.window}), RSS {rss:8.1f} MiB")
    base_t, base_m = results[checkpoints[0]]
    for c in checkpoints[1:]:
        t, m = results[c]
        print(f"ratio {c}/{checkpoints[0]}: time {t / base_t:.3f}, memory {m / base_m:.3f}")


if __name__ == "__main__":
    main()
