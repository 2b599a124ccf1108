"""VGGT inference time and peak memory of the node's path and the evaluation's against the full-output path.

Each configuration runs in a fresh child process (`child_measure`: peaks cannot mask each other):
the child builds the model with random weights, runs a tiny warm-up forward (kernels, thread pools),
then `--repeats` timed forwards (default 1) whose median time and largest peak memory above what the
process held before are reported, and saves its outputs. Configurations, each against `full` in the same run:

- `full`: all heads (depth, camera, points), every decoder layer kept: the previous full-output path;
- `eval`: all heads, only the decoder layers the heads read kept (evaluation, trainer);
- `node`: the session's heads (depth, camera), only the head layers kept (the node, `fin3r reconstruct`).

Models: `vggt-tiny` (4 decoder layers, all read by the heads) and `tiny-24` (tiny widths with the
release's 24 decoder layers and head layers 4/11/17/23, where keeping only the head layers matters)
at frames 1/2/4/8; `vggt-1b`, the release architecture in fp32, at frames 1 and 8 (~5 GB for the
weights; `--no-full` skips it). Images 392x518 (`--size H W` for another). Prints one row per
configuration with its time and memory ratios against `full` and the max absolute difference of the
outputs both produce (0 where nothing changed numerically). Targets: eval/full memory <= 0.5x at 8
frames with 24 layers; node/full <= 0.8x time and memory for vggt-1b at 1 and 8 frames.

`--paths` instead compares, in this one process, a windowed session step (8 context keyframes + the
new frame, `--context`) through `predict`, after one untimed all-heads step of the same size: the
session's heads (depth, camera) against all heads, and with a warm encoder-token cache (only the new
frame encoded) against re-encoding the context. Prints median times, the ratios and the outputs' max
absolute difference (0 where nothing changed).
`--paths M --compile` adds the depth+camera step with the transformer blocks compiled
(`fin3r_lib.models.compile`, inductor; one untimed step compiles) against the eager one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch
from child_measure import max_diff, measure_repeated, ratios, run_child, save_outputs

HEIGHT, WIDTH = 392, 518
#: configuration -> (heads, keep only the head layers)
CONFIGS: dict[str, tuple[tuple[str, ...] | None, bool]] = {
    "full": (None, False),
    "eval": (None, True),
    "node": (("depth", "camera"), True),
}


def _build(name: str):
    from fin3r_lib.models import build_model
    from fin3r_lib.models.vggt.config import VGGT_TINY
    from fin3r_lib.models.vggt.model import VGGT

    if name == "tiny-24":
        return VGGT(dataclasses.replace(VGGT_TINY, depth=24, dpt_layers=(4, 11, 17, 23))).eval()
    return build_model(name)


def child(name: str, frames: int, config: str, args: argparse.Namespace, size: tuple[int, int], out_path: str) -> dict:
    """One configuration in this process: median time and largest peak memory of `--repeats` forwards."""
    heads, keep_head_layers = CONFIGS[config]
    torch.manual_seed(0)
    model = _build(name).to(args.device)
    if not keep_head_layers:
        model.keep_layers = None
    if args.chunk is not None:
        model.frames_chunk_size = args.chunk
    images = torch.rand(1, frames, 3, *size, device=args.device)
    with torch.inference_mode():
        model(images[:, :1, :, :28, :28], heads=heads)  # warm-up: kernels and thread pools, small high-water mark
        elapsed, peak, out = measure_repeated(lambda: model(images, heads=heads), args.device, args.repeats)
    save_outputs(out_path, out)
    return {"time_s": elapsed, "peak_bytes": peak}


def paths(name: str, context: int, repeats: int, device: str, size: tuple[int, int], compiled: bool = False) -> None:
    """Session-step time: heads subset vs all heads, warm encoder-token cache vs none (same process)."""
    import numpy as np

    from fin3r_lib.models.base import SESSION_HEADS
    from fin3r_lib.models.token_cache import EncoderTokenCache

    torch.manual_seed(0)
    model = _build(name).to(device)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(context + 2)]
    window = images[1:]  # the context slid by one: frames 1..context cached, the last one new
    model.predict(window, heads=None)  # warm-up at the window's size: the first timed step pays no first-call costs

    def step(cache: EncoderTokenCache | None, heads=SESSION_HEADS):
        if cache is not None:  # the previous step's window, as the session leaves the cache
            cache.clear()
            model.predict(images[:-1], heads=SESSION_HEADS, token_cache=cache)
        start = time.perf_counter()
        out = model.predict(window, heads=heads, token_cache=cache)
        return time.perf_counter() - start, out

    def timed(cache_on: bool, heads) -> tuple[float, object]:
        runs = [step(EncoderTokenCache(context + 1) if cache_on else None, heads) for _ in range(repeats)]
        return sorted(r[0] for r in runs)[len(runs) // 2], runs[0][1]

    t_all, all_heads = timed(False, None)
    t_base, base = timed(False, SESSION_HEADS)
    t_cached, cached = timed(True, SESSION_HEADS)
    diff_heads = float(np.abs(all_heads.depth - base.depth).max())
    diff_cache = max(
        float(np.abs(cached.depth - base.depth).max()), float(np.abs(cached.cam_to_world - base.cam_to_world).max())
    )
    print(f"{name}: {context} context keyframes + 1 new frame, {size[0]}x{size[1]}, median of {repeats}, {device}")
    print(f"  all heads                   {t_all:8.3f} s")
    print(
        f"  depth+camera                {t_base:8.3f} s  ratio vs all heads {t_base / t_all:.2f}x, "
        f"depth max diff {diff_heads:.3g}"
    )
    print(
        f"  depth+camera, token cache   {t_cached:8.3f} s  ratio vs no cache {t_cached / t_base:.2f}x, "
        f"vs all heads {t_cached / t_all:.2f}x, depth/pose max diff {diff_cache:.3g}"
    )
    if compiled:
        from fin3r_lib.models.compile import compile_blocks

        compile_blocks(model)
        step(None)  # compiles
        t_compiled, out = timed(False, SESSION_HEADS)
        diff = max(
            float(np.abs(out.depth - base.depth).max()), float(np.abs(out.cam_to_world - base.cam_to_world).max())
        )
        print(
            f"  depth+camera, compiled      {t_compiled:8.3f} s  ratio vs eager {t_compiled / t_base:.2f}x, "
            f"depth/pose max diff {diff:.3g}"
        )


def run(name: str, frames: int, config: str, args: argparse.Namespace, size: tuple[int, int], out: Path) -> dict:
    child_args = ["--child", name, str(frames), config, str(out), "--device", args.device, "--size", *map(str, size)]
    child_args += ["--repeats", str(args.repeats)]
    if args.chunk is not None:
        child_args += ["--chunk", str(args.chunk)]
    return run_child(__file__, child_args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--full-frames", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--no-full", action="store_true", help="skip the full vggt-1b configuration")
    parser.add_argument("--chunk", type=int, help="frames per DPT-head chunk (default: the config's)")
    parser.add_argument("--only", nargs="+", help="run only these models")
    parser.add_argument("--paths", help="compare session-step paths of this model in one process (see above)")
    parser.add_argument("--context", type=int, default=8, help="context keyframes for --paths")
    parser.add_argument(
        "--repeats", type=int, help="timed repeats: median time, largest peak (default 3 with --paths, else 1)"
    )
    parser.add_argument("--compile", action="store_true", help="--paths: also the compiled depth+camera step")
    parser.add_argument(
        "--size", type=int, nargs=2, default=(HEIGHT, WIDTH), metavar=("H", "W"), help="image size (multiples of 14)"
    )
    parser.add_argument("--child", nargs=4, metavar=("MODEL", "FRAMES", "CONFIG", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = 3 if args.paths else 1
    size = (args.size[0], args.size[1])
    if args.paths:
        paths(args.paths, args.context, args.repeats, args.device, size, args.compile)
        return
    if args.child:
        name, frames, config, out = args.child
        print(json.dumps(child(name, int(frames), config, args, size, out)))
        return
    plan = [("vggt-tiny", args.frames), ("tiny-24", args.frames)]
    if not args.no_full:
        plan.append(("vggt-1b", args.full_frames))
    if args.only:
        plan = [p for p in plan if p[0] in args.only]
    chunk = args.chunk or "config default"
    threads = torch.get_num_threads()
    print(f"device {args.device}, images {size[0]}x{size[1]}, head chunk {chunk}, torch threads {threads}")
    header = f"{'time s':>8} {'peak MB':>9} {'time/full':>9} {'mem/full':>8}  max diff"
    print(f"{'model':>10} {'frames':>6} {'config':>6} {header}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, frame_counts in plan:
            for frames in frame_counts:
                outs = {c: Path(tmp) / f"{name}-{frames}-{c}.npz" for c in CONFIGS}
                res = {c: run(name, frames, c, args, size, outs[c]) for c in CONFIGS}
                for c, r in res.items():
                    time_ratio, memory_ratio = ratios(r, res["full"])
                    print(
                        f"{name:>10} {frames:>6} {c:>6} {r['time_s']:>8.3f} {r['peak_bytes'] / 2**20:>9.1f} "
                        f"{time_ratio:>9.3f} {memory_ratio:>8.3f}  {max_diff(outs[c], outs['full']):.3g}"
                    )


if __name__ == "__main__":
    main()
