"""Cost of the end-of-run depth rewrite of `fin3r reconstruct` with a metric scale source.

With `--scale-source depth|odometry`, each frame's depth is written at the scale estimate known when
the frame came; at the end of the run (and at a time-jump reset) every frame whose scale differs from
the last estimate by more than `DEPTH_RESCALE_TOLERANCE` is read back and written again (`.npy` and
16-bit `.png`), so that the folder is in one unit. This runs vggt-tiny (random weights) over synthetic
frames that carry a sensor depth (scale source `depth`: the estimate moves with every frame, the worst
case, as almost every frame is rewritten) through the runner and an `OutputFolder`, and prints, from the
same run: the per-frame time of the run's own writes (the baseline), the rewrite per rewritten frame,
their ratio, and the rewrite's share of the run's wall time.

    .venv/bin/python benchmarks/bench_output_rescale.py [--frames 200] [--size 480 640] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_session import synthetic_frames

from fin3r_lib.data.frame import Frame
from fin3r_lib.model_options import ModelOptions
from fin3r_lib.models import load_model
from fin3r_lib.output_folder import OutputFolder
from fin3r_lib.runner import Runner, RunnerOptions
from fin3r_lib.session import SessionConfig
from fin3r_lib.session.scale import ScaleConfig


class TimedOutputFolder(OutputFolder):
    """An OutputFolder that adds up the seconds of its per-frame writes and of its rescaling passes, and
    counts the depth files a rescaling pass rewrites."""

    def __init__(self, out: Path, settings: dict) -> None:
        super().__init__(out, settings)
        self.write_s = 0.0
        self.rescale_s = 0.0
        self.rescaled_frames = 0

    def on_frame(self, frame, result) -> None:
        start = time.perf_counter()
        super().on_frame(frame, result)
        self.write_s += time.perf_counter() - start

    def _rescale_epoch(self) -> int:
        start = time.perf_counter()
        rewritten = super()._rescale_epoch()
        self.rescale_s += time.perf_counter() - start
        self.rescaled_frames += rewritten
        return rewritten


def frames_with_depth(count: int, size: tuple[int, int]):
    """bench_session's panning frames, each with a sensor depth of 1.5-2.5 m (smooth in x)."""
    h, w = size
    depth = np.tile(np.linspace(1.5, 2.5, w, dtype=np.float32), (h, 1))
    for frame in synthetic_frames(count, size, 6.0):
        yield Frame(rgb=frame.rgb, stamp=frame.stamp, index=frame.index, depth=depth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--size", type=int, nargs=2, default=(480, 640), metavar=("H", "W"))
    parser.add_argument("--out", type=Path, help="new folder for the run's files (default: a temporary one)")
    args = parser.parse_args()
    model = load_model(ModelOptions("vggt-tiny", "none", device="cpu", seed=0))
    options = RunnerOptions(session=SessionConfig(), scale=ScaleConfig(source="depth"))
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "run"
        sink = TimedOutputFolder(out, {"benchmark": "bench_output_rescale"})
        runner = Runner(model, options, sinks=[sink])
        start = time.perf_counter()
        summary = runner.run(frames_with_depth(args.frames, tuple(args.size)))
        wall = time.perf_counter() - start
    h, w = args.size
    per_write = sink.write_s / summary.frames
    per_rescale = sink.rescale_s / max(sink.rescaled_frames, 1)
    print(
        f"vggt-tiny (random weights), CPU, {torch.get_num_threads()} torch threads, {summary.frames} frames of "
        f"{w}x{h} with sensor depth, scale source depth (final {summary.scale['scale']:.4f})"
    )
    print(f"run wall time {wall:.1f} s, model {summary.model_s:.1f} s")
    print(f"per-frame writes during the run (baseline): {per_write * 1e3:.1f} ms/frame ({sink.write_s:.2f} s)")
    print(
        f"end-of-run rewrite: {sink.rescaled_frames} of {summary.frames} frames, {per_rescale * 1e3:.1f} ms/frame "
        f"({sink.rescale_s:.2f} s); ratio to the per-frame writes {per_rescale / per_write:.2f}x; "
        f"share of the run's wall time {sink.rescale_s / wall:.3f}"
    )


if __name__ == "__main__":
    main()
