"""The run of `fin3r reconstruct` once its options are checked: the model, the runner, the output folder.

`fin3r_lib.cli.reconstruct` checks everything a user can get wrong first (without importing torch),
then calls `reconstruct` here.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Iterable, Iterator
from itertools import islice
from types import FrameType

from tqdm import tqdm

from fin3r_lib.data.frame import Frame, SkippedFrame
from fin3r_lib.data.sources import frame_count, open_frames
from fin3r_lib.errors import Fin3rError
from fin3r_lib.global_align import AlignSettings, PairGraph
from fin3r_lib.global_align.files import write_alignment
from fin3r_lib.model_options import ModelOptions
from fin3r_lib.models.loader import load_model
from fin3r_lib.output_folder import OutputFolder
from fin3r_lib.runner import Runner, RunnerOptions, RunSummary
from fin3r_lib.session import SessionResult
from fin3r_lib.session.config import SessionConfig
from fin3r_lib.session.scale import ScaleConfig


def _load_model(args: argparse.Namespace):
    return load_model(ModelOptions.from_args(args), tool="cli")


def _one_camera(items: Iterable[Frame | SkippedFrame], camera: str | None) -> Iterator[Frame | SkippedFrame]:
    """The frames of `camera` (default: the first frame's), and every skipped item."""
    for item in items:
        if isinstance(item, Frame):
            camera = camera or item.camera
            if item.camera != camera:
                continue
        yield item


class Progress:
    """A sink showing a progress bar and saying every skipped input."""

    def __init__(self, total: int | None, quiet: bool) -> None:
        self.bar = tqdm(total=total, unit="frame", desc="reconstruct", disable=quiet)

    def on_frame(self, frame: Frame, result: SessionResult) -> None:
        self.bar.update(1)

    def on_skip(self, source: str, reason: str) -> None:
        tqdm.write(f"fin3r reconstruct: skipped {source}: {reason}", file=sys.stderr)

    def on_finish(self, runner: Runner, summary: RunSummary) -> None:
        self.bar.close()


class Interrupt:
    """SIGINT/SIGTERM: the first asks the run to stop after the current frame, a second SIGINT exits (130)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            print("fin3r reconstruct: second interrupt, exiting now", file=sys.stderr, flush=True)
            os._exit(130)
        self.signum = signum
        print(
            f"fin3r reconstruct: {signal.Signals(signum).name}: finishing the current frame and writing every "
            "output (press Ctrl-C again to exit now)",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> Interrupt:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


def reconstruct(args: argparse.Namespace, config: SessionConfig, scale: ScaleConfig, settings: dict) -> int:
    """Load the model and run the checked options of `fin3r reconstruct` into `--out` (see `run` there)."""
    options = RunnerOptions(input_max_side=args.input_max_side, session=config, scale=scale)
    align_settings = AlignSettings(iterations=args.align_iterations) if args.global_align else None
    model = _load_model(args)
    graph = PairGraph(model, config, window=args.align_window) if args.global_align else None
    folder = OutputFolder(args.out, settings, resume=args.resume)
    total = frame_count(args.input, args.pattern)
    if args.max_frames is not None:
        total = min(total, args.max_frames) if total is not None else args.max_frames
    runner = Runner(model, options, [folder, Progress(total, args.quiet), *([graph] if graph else [])])
    if args.resume:
        folder.restore(runner)
    frames = open_frames(
        args.input,
        topics=args.topics,
        fps=args.fps,
        pattern=args.pattern,
        depth_topics=args.depth_topics,
        fixed_frame=args.odom_frame,
    )
    items = _one_camera(frames, args.camera)
    with Interrupt() as interrupt:
        summary = runner.run(
            islice(items, runner.items, None), stop=lambda: interrupt.signum is not None, max_frames=args.max_frames
        )
    line = f"{summary.frames} frames ({runner.session.num_keyframes} keyframes), {len(summary.skipped)} skipped"
    if scale.source != "none":
        line += f"; {runner.scale_estimate.status}"
        if runner.scale_missing:
            what = "keyframes without a pose" if scale.source == "odometry" else "frames without depth"
            line += f" ({runner.scale_missing} {what})"
    if summary.interrupted:
        print(f"fin3r reconstruct: interrupted after {line} -> {args.out}; `--resume` continues", file=sys.stderr)
        return 128 + (interrupt.signum or signal.SIGINT)
    if summary.frames == 0:
        raise Fin3rError(f"{args.input}: no frame could be reconstructed ({line}; see {args.out}/summary.json)")
    if graph is not None:
        alignment = graph.align(align_settings)
        write_alignment(args.out, alignment, folder.names)
        r = alignment.result
        line += (
            f"; global alignment of {alignment.keyframes} keyframes over {r.edges_used} pairs: "
            f"loss {r.loss_initial:.4g} -> {r.loss_final:.4g}"
        )
    print(f"fin3r reconstruct: {line} -> {args.out}")
    return 0
