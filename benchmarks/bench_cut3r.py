"""CUT3R streaming cost over a long sequence: per-frame time and process memory at frames 10, 100, 1000.

Streams `--frames` frames through `cut3r-tiny` on the CPU (random weights; the cost does not depend
on them) and prints, at each checkpoint frame, the median step time over the preceding `--window`
frames and the resident set size (RSS), then the ratios against frame 10 measured in the same run.
Targets: memory 1000/10 <= 1.05, time 1000/10 <= 1.1.

    .venv/bin/python benchmarks/bench_cut3r.py [--frames 1000] [--height 120 --width 160]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--window", type=int, default=10, help="frames per median time")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
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
