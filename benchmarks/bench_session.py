"""Per-frame time and memory of a long reconstruction session must not grow with the sequence.

A synthetic camera pans back and forth over a large random texture (so the keyframe gate keeps
accepting frames and the context and map keep turning over); a tiny backbone with random weights
(`load_model(ModelOptions(..., "none"))`, so random CroCo heads get their pinhole prior and usable focal lengths)
runs every frame through `ReconstructionSession`, of the backbone's kind (vggt-tiny windowed,
cut3r-tiny streaming, dust3r-tiny pairwise). Printed: the median per-frame time and the mean process
RSS over a window at frame `--early` and at the end of the run, and their ratios (target <= 1.05).

    .venv/bin/python benchmarks/bench_session.py --frames 1000 --early 100 --model dust3r-tiny
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import torch
from child_measure import rss_bytes

from fin3r_lib.data.frame import Frame
from fin3r_lib.model_options import ModelOptions
from fin3r_lib.models import load_model
from fin3r_lib.session import ReconstructionSession, SessionConfig


def synthetic_frames(count: int, size: tuple[int, int], step_px: float, seed: int = 0):
    """Frames of a window panning over a smooth random texture, back and forth, `step_px` per frame."""
    h, w = size
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (h * 2, w * 6, 3), dtype=np.uint8)
    texture = cv2.GaussianBlur(texture, (0, 0), 3)
    travel = texture.shape[1] - w
    for i in range(count):
        x = (i * step_px) % (2 * travel)
        x = int(x if x < travel else 2 * travel - x)
        y = int(h / 2 + h / 4 * np.sin(i / 50))
        yield Frame(rgb=np.ascontiguousarray(texture[y : y + h, x : x + w]), stamp=i / 30.0, index=i)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vggt-tiny")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--early", type=int, default=100, help="frame index of the early window")
    parser.add_argument("--window", type=int, default=20, help="frames per measurement window")
    parser.add_argument("--size", type=int, nargs=2, default=(120, 160), metavar=("H", "W"))
    parser.add_argument("--step-px", type=float, default=6.0, help="pan per frame (pixels)")
    parser.add_argument("--max-map-points", type=int, default=100_000)
    parser.add_argument("--voxel-size", type=float, default=0.002, help="small: the random model's world is ~1 unit")
    args = parser.parse_args()
    if args.frames < args.early + 2 * args.window:
        parser.error(f"--frames must be at least early + 2 * window = {args.early + 2 * args.window}")

    model = load_model(ModelOptions(args.model, "none", device=args.device, seed=0))
    # keep every pixel: a random-weight model's confidences carry no meaning, and a full map tests the bound
    config = SessionConfig(
        min_confidence=0.0,
        confidence_top_fraction=1.0,
        voxel_size=args.voxel_size,
        max_map_points=args.max_map_points,
    )
    session = ReconstructionSession(model, config)
    times, rss, map_sizes = [], [], []
    keyframes = 0
    for frame in synthetic_frames(args.frames, tuple(args.size), args.step_px):
        t0 = time.perf_counter()
        result = session.process(frame)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        rss.append(rss_bytes() / 2**20)
        keyframes += result.is_keyframe
        map_sizes.append(len(session.map_cloud()[0]) if frame.index in (args.early, args.frames - 1) else -1)

    early = slice(args.early, args.early + args.window)
    late = slice(args.frames - args.window, args.frames)
    t_early, t_late = np.median(times[early]), np.median(times[late])  # median: robust to other processes
    m_early, m_late = np.mean(rss[early]), np.mean(rss[late])
    print(
        f"model {args.model} on {args.device}, {args.frames} frames of {args.size[1]}x{args.size[0]}, "
        f"{keyframes} keyframes, context {config.context_size}, map bound {args.max_map_points}"
    )
    print(f"map points: {map_sizes[args.early]} at frame {args.early}, {map_sizes[-1]} at the end")
    print(f"{'window':<24}{'median ms':>10}{'RSS MiB':>10}")
    print(f"{f'frames {early.start}-{early.stop - 1}':<24}{t_early * 1e3:>10.2f}{m_early:>10.1f}")
    print(f"{f'frames {late.start}-{late.stop - 1}':<24}{t_late * 1e3:>10.2f}{m_late:>10.1f}")
    print(f"{'ratio late/early':<24}{t_late / t_early:>10.3f}{m_late / m_early:>10.3f}")


if __name__ == "__main__":
    main()
