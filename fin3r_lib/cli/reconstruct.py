"""`fin3r reconstruct`: a recorded sequence (images, video, frame dataset, bag) through the runner, to files.

The same `Runner` (and so the same session and options) as the node, with an `OutputFolder` sink:
see `fin3r_lib.output_folder` for the files written into `--out`. The output folder is checked
before the model loads. `--scale-source odometry|depth` makes every output metric with what the input
gives: the poses of a frame dataset or of a bag's TF (`--odom-frame`), the depth of a frame dataset or
of a bag's `--depth-topic` (see `fin3r_lib.session.scale`; the estimate is in summary.json). SIGINT/SIGTERM finish
the current frame and write everything (summary with `interrupted: true`); `--resume` continues; a second
SIGINT exits at once (130).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict, fields
from itertools import islice
from pathlib import Path
from types import FrameType

from tqdm import tqdm

from fin3r_lib.data.frame import Frame, SkippedFrame
from fin3r_lib.data.sources import frame_count, input_kind, open_frames
from fin3r_lib.errors import Fin3rError
from fin3r_lib.global_align import AlignSettings, PairGraph
from fin3r_lib.global_align.files import write_alignment
from fin3r_lib.model_options import ModelOptions
from fin3r_lib.models.loader import load_model
from fin3r_lib.output_folder import OutputFolder, check_output_folder
from fin3r_lib.runner import Runner, RunnerOptions, RunSummary
from fin3r_lib.session import SessionConfig, SessionResult
from fin3r_lib.session.scale import SCALE_SOURCES, ScaleConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of `fin3r reconstruct` (every SessionConfig setting is an option too)."""
    parser.add_argument("input", help="folder of images, video file, `fin3r extract` dataset, or bag")
    parser.add_argument("--out", required=True, help="output folder")
    ModelOptions.add_arguments(parser)
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    parser.add_argument(
        "--input-max-side",
        type=int,
        default=0,
        help="downscale images whose long side is larger first, as the node's input_max_side (0: full size)",
    )
    parser.add_argument(
        "--pattern",
        help="glob choosing a folder's images, e.g. '*.color.png' (default: every colour image; depth maps skipped)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the interrupted run in --out (same input and options)"
    )
    parser.add_argument("--topic", action="append", dest="topics", help="bag image topic (repeatable)")
    parser.add_argument(
        "--depth-topic",
        action="append",
        dest="depth_topics",
        default=[],
        help="bag: aligned depth Image topic, one per --topic in the same order (repeatable), for --scale-source depth",
    )
    parser.add_argument(
        "--odom-frame", help="bag: TF frame of the poses --scale-source odometry uses (default: the TF tree's root)"
    )
    parser.add_argument("--camera", help="camera to reconstruct when the input has several (default: the first)")
    parser.add_argument("--fps", type=float, help="stamp rate of folder/video frames (default: video rate or 30)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--global-align",
        action="store_true",
        help="pairwise models (dust3r-*, mast3r-*): also pair each keyframe with the --align-window before it and "
        "align the pair graph globally at the end (trajectory_aligned.txt, map_aligned.ply, alignment.json)",
    )
    parser.add_argument("--align-window", type=int, default=3, help="earlier keyframes each keyframe is paired with")
    parser.add_argument("--align-iterations", type=int, default=300, help="optimiser iterations of --global-align")
    session = parser.add_argument_group("session settings (see fin3r_lib.session.SessionConfig)")
    for f in fields(SessionConfig):
        _add_setting(session, f.name, f.default)
    scale = parser.add_argument_group("metric scale (see fin3r_lib.session.scale.ScaleConfig)")
    scale.add_argument(
        "--scale-source",
        choices=SCALE_SOURCES,
        default="none",
        help="none: model units; odometry: fit to the input's camera poses; depth: to its aligned depth (default none)",
    )
    for f in fields(ScaleConfig):
        if f.name != "source":
            _add_setting(scale, f"scale_{f.name}", f.default)


def _add_setting(group: argparse._ArgumentGroup, name: str, default: object) -> None:
    """An option `--<name>` for a config field of default `default` (a flag pair for booleans)."""
    option = "--" + name.replace("_", "-")
    if isinstance(default, bool):
        group.add_argument(option, action=argparse.BooleanOptionalAction, default=default)
    else:
        group.add_argument(option, type=type(default), default=default, help=f"(default {default})")


def _scale_config(args: argparse.Namespace, kind: str) -> ScaleConfig:
    """The `ScaleConfig` of the options; Fin3rError when the input cannot give the chosen source."""
    config = ScaleConfig(
        source=args.scale_source,
        **{f.name: getattr(args, f"scale_{f.name}") for f in fields(ScaleConfig) if f.name != "source"},
    )
    if config.source != "none" and kind in ("images", "video"):
        raise Fin3rError(
            f"--scale-source {config.source}: expected an input with {config.source} (a frame dataset or a bag), "
            f"got a {'folder of images' if kind == 'images' else 'video'}"
        )
    if config.source == "depth" and kind == "bag" and not args.depth_topics:
        raise Fin3rError("--scale-source depth on a bag: expected --depth-topic (the aligned depth topic), got none")
    if args.depth_topics and kind != "bag":
        raise Fin3rError(f"--depth-topic: expected a bag input, got a {kind}")
    return config


def _load_model(args: argparse.Namespace):
    return load_model(ModelOptions.from_args(args), tool="cli")


def _settings(args: argparse.Namespace, kind: str, config: SessionConfig, scale: ScaleConfig) -> dict:
    """What decides the results (a resumed run must have the same): input, model, options."""
    return {
        "input": str(Path(args.input).resolve()),
        "kind": kind,
        "model": args.model,
        "checkpoint": args.checkpoint,
        "adapter": args.adapter,
        "precision": args.precision,
        "seed": args.seed,
        "topics": args.topics,
        "camera": args.camera,
        "fps": args.fps,
        "pattern": args.pattern,
        "input_max_side": args.input_max_side,
        "global_align": [args.align_window, args.align_iterations] if args.global_align else None,
        "session": asdict(config),
        "scale": asdict(scale),
        "depth_topics": args.depth_topics,
        "odom_frame": args.odom_frame,
    }


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


def run(args: argparse.Namespace) -> int:
    """Run `fin3r reconstruct`; prints a one-line summary (exit 128 + signal when interrupted)."""
    kind = input_kind(args.input)
    config = SessionConfig(**{f.name: getattr(args, f.name) for f in fields(SessionConfig)})
    scale = _scale_config(args, kind)
    options = RunnerOptions(input_max_side=args.input_max_side, session=config, scale=scale)
    settings = _settings(args, kind, config, scale)
    if args.global_align and args.resume:
        raise Fin3rError("--global-align cannot --resume an interrupted run (its pair graph is not kept); run again")
    align_settings = AlignSettings(iterations=args.align_iterations) if args.global_align else None
    check_output_folder(args.out, args.resume, settings)
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
