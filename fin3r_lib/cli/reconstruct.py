"""`fin3r reconstruct`: a recorded sequence (images, video, frame dataset, bag) through the runner, to files.

The same `Runner` (and so the same session and options) as the node, with an `OutputFolder` sink:
see `fin3r_lib.output_folder` for the files written into `--out`. The output folder is checked
before the model loads. `--scale-source odometry|depth` makes every output metric with what the input
gives: the poses of a frame dataset or of a bag's TF (`--odom-frame`), the depth of a frame dataset or
of a bag's `--depth-topic` (see `fin3r_lib.session.scale`; the estimate is in summary.json). SIGINT/SIGTERM finish
the current frame and write everything (summary with `interrupted: true`); `--resume` continues; a second
SIGINT exits at once (130). This module checks the options, the input, the output folder and the
checkpoint file without importing torch; `fin3r_lib.cli.reconstruct_run` loads the model and runs.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, fields
from pathlib import Path

from fin3r_lib.data.sources import input_kind
from fin3r_lib.errors import Fin3rError
from fin3r_lib.model_options import ModelOptions
from fin3r_lib.models.checkpoint_ref import find_model_checkpoint
from fin3r_lib.output_folder import check_output_folder
from fin3r_lib.session.config import SessionConfig
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


def run(args: argparse.Namespace) -> int:
    """Run `fin3r reconstruct`; prints a one-line summary (exit 128 + signal when interrupted)."""
    kind = input_kind(args.input)
    config = SessionConfig(**{f.name: getattr(args, f.name) for f in fields(SessionConfig)})
    scale = _scale_config(args, kind)
    settings = _settings(args, kind, config, scale)
    if args.global_align and args.resume:
        raise Fin3rError("--global-align cannot --resume an interrupted run (its pair graph is not kept); run again")
    check_output_folder(args.out, args.resume, settings)
    find_model_checkpoint(ModelOptions.from_args(args), tool="cli")  # a missing file fails here, in well under 1 s
    from fin3r_lib.cli.reconstruct_run import reconstruct  # the model code: torch and the backbones (seconds)

    return reconstruct(args, config, scale, settings)
