"""CUT3R streaming cost over a long sequence: per-frame time and process memory at frames 10, 100, 1000.

Streams `--frames` frames through `cut3r-tiny` on the CPU (random weights; the cost does not depend
on them) and prints, at each checkpoint frame, the median step time over the preceding `--window`
frames and the resident set size (RSS), then the ratios against frame 10 measured in the same run.
Targets: memory 1000/10 <= 1.05, time 1000/10 <= 1.1.

    .venv/bin/python benchmarks/bench_cut3r.py [--frames 1000] [--height 120 --width 160]

`--paths`: instead, one step's time (median of `--repeats`) and peak memory above what the process
held before it (the largest of the repeats) for each configuration, each in a fresh child process
(`child_measure`), as ratios against the full-output fp32 path of the same run, with the max
absolute difference of the outputs both produce (0 where nothing changed numerically):

- `full`: every output, fp32 (the evaluation's and the trainer's path);
- `node`: the node's heads (depth, camera), fp32;
- `bf16`: every output under bf16 autocast (`precision: bf16`);
- `compiled` (with `--compile`): the node path with the transformer blocks compiled
  (`fin3r_lib.models.compile`, inductor; the first step compiles and is not timed), against `node`.

    .venv/bin/python benchmarks/bench_cut3r.py --paths --model cut3r-512-dpt --height 384 --width 512 --threads 2
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from child_measure import max_diff, measure_repeated, ratios, rss_bytes, run_child, save_outputs

from fin3r_lib.models.loader import build_model

CHECKPOINTS = (10, 100, 1000)


#: --paths configuration -> (heads, autocast dtype, compiled blocks)
PATH_CONFIGS: dict[str, tuple[tuple[str, ...] | None, torch.dtype | None, bool]] = {
    "full": (None, None, False),
    "node": (("depth", "camera"), None, False),
    "bf16": (None, torch.bfloat16, False),
    "compiled": (("depth", "camera"), None, True),
}


def path_child(args: argparse.Namespace, config: str, out_path: str) -> dict:
    """One --paths configuration in this process: median step time, peak memory, outputs saved."""
    heads, autocast, compiled = PATH_CONFIGS[config]
    torch.manual_seed(0)
    model = build_model(args.model)
    rgb = np.random.default_rng(0).integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    image = model.prepare_frame(rgb)[0][None]  # on the model's grid, as the node feeds it
    if autocast is not None:
        model.autocast_dtype = autocast
    if compiled:
        from fin3r_lib.models.compile import compile_blocks

        compile_blocks(model)

    def step() -> dict:
        return model.step_tensor(image, model.initial_state(1), heads=heads)[0]

    with torch.inference_mode():
        step()  # warm-up (compiles when compiled): kernels and thread pools
        seconds, peak, out = measure_repeated(step, "cpu", args.repeats)
    save_outputs(out_path, out)
    return {"time_s": seconds, "peak_bytes": peak}


def compare_paths(args: argparse.Namespace) -> None:
    """Each --paths configuration in a child process, against `full` (`compiled` against `node`)."""
    configs = [c for c in PATH_CONFIGS if c != "compiled" or args.compile]
    common = ["--model", args.model, "--height", str(args.height), "--width", str(args.width)]
    common += ["--threads", str(args.threads), "--repeats", str(args.repeats)]
    print(f"{args.model}, {args.height}x{args.width}, cpu, {args.threads} threads, median of {args.repeats} steps")
    with tempfile.TemporaryDirectory() as tmp:
        outs = {c: str(Path(tmp) / f"{c}.npz") for c in configs}
        res = {c: run_child(__file__, [*common, "--path-child", c, outs[c]]) for c in configs}
        for c, r in res.items():
            ref = "node" if c == "compiled" else "full"
            time_ratio, memory_ratio = ratios(r, res[ref])
            print(
                f"{c:9s}: {r['time_s'] * 1e3:9.1f} ms, peak {r['peak_bytes'] / 2**20:8.1f} MiB; vs {ref}: "
                f"time {time_ratio:.3f}, memory {memory_ratio:.3f}, max diff {max_diff(outs[c], outs[ref]):.3g}"
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
    parser.add_argument("--path-child", nargs=2, metavar=("CONFIG", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.path_child:
        print(json.dumps(path_child(args, *args.path_child)))
        return
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
            results[i] = (statistics.median(times[-args.window :]), rss_bytes() / 2**20)
            step_ms, rss = results[i][0] * 1e3, results[i][1]
            print(f"frame {i:5d}: {step_ms:7.2f} ms/frame (median of {args.window}), RSS {rss:8.1f} MiB")
    base_t, base_m = results[checkpoints[0]]
    for c in checkpoints[1:]:
        t, m = results[c]
        print(f"ratio {c}/{checkpoints[0]}: time {t / base_t:.3f}, memory {m / base_m:.3f}")


if __name__ == "__main__":
    main()
