"""`fin3r reconstruct`: a recorded sequence (images, video, frame dataset, bag) through the session, to files.

Runs the same `ReconstructionSession` as the node and writes into `--out`:
`depth/<frame>.png|.npy`, `confidence/<frame>.npy`, `map.ply`, `trajectory.txt` (TUM),
`intrinsics.json`, `map_preview.png`, `depth_preview.png` and `summary.json`.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fin3r_lib.data.sources import frame_count, input_kind, open_frames
from fin3r_lib.errors import Fin3rError
from fin3r_lib.outputs import (
    write_confidence,
    write_depth,
    write_intrinsics,
    write_ply,
    write_previews,
    write_tum,
)
from fin3r_lib.session import AlignmentError, ReconstructionSession, SessionConfig

NAME = "reconstruct"
HELP = "Reconstruct a folder of images, a video, a frame dataset or a bag: depth, map PLY, TUM trajectory."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of `fin3r reconstruct` (every SessionConfig setting is an option too)."""
    parser.add_argument("input", help="folder of images, video file, `fin3r extract` dataset, or bag")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--model", default="vggt-1b", help="backbone name, e.g. vggt-1b, vggt-tiny, cut3r-512-dpt")
    parser.add_argument(
        "--checkpoint",
        default="default",
        help="`default` (released weights), a local file or folder, a Hugging Face repo id, or `none` (random)",
    )
    parser.add_argument(
        "--adapter", help="Fin3R adapter: a .safetensors from save_adapter or the authors' .pth (e.g. vggt_lora.pth)"
    )
    parser.add_argument("--device", default="auto", help="`auto` (cuda when available, else cpu), cpu, cuda, ...")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    parser.add_argument("--topic", action="append", dest="topics", help="bag image topic (repeatable)")
    parser.add_argument("--camera", help="camera to reconstruct when the input has several (default: the first)")
    parser.add_argument("--fps", type=float, help="stamp rate of folder/video frames (default: video rate or 30)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    session = parser.add_argument_group("session settings (see fin3r_lib.session.SessionConfig)")
    for f in fields(SessionConfig):
        default = f.default
        option = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            session.add_argument(option, action=argparse.BooleanOptionalAction, default=default)
        else:
            session.add_argument(option, type=type(default), default=default, help=f"(default {default})")


def _load_model(args: argparse.Namespace):
    from fin3r_lib.models import load_model

    return load_model(args.model, args.checkpoint, device=args.device, adapter=args.adapter)


def run(args: argparse.Namespace) -> int:
    """Run `fin3r reconstruct`; prints a one-line summary."""
    kind = input_kind(args.input)
    config = SessionConfig(**{f.name: getattr(args, f.name) for f in fields(SessionConfig)})
    model = _load_model(args)
    session = ReconstructionSession(model, config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    total = frame_count(args.input)
    if args.max_frames is not None:
        total = min(total, args.max_frames) if total is not None else args.max_frames
    stamps: list[float] = []
    poses: list[np.ndarray] = []
    intrinsics: list[np.ndarray] = []
    names: list[str] = []
    camera, skipped_other, unplaced, resets = args.camera, 0, 0, 0
    model_s = 0.0
    size: tuple[int, int] = (0, 0)
    start = time.perf_counter()
    frames = open_frames(args.input, topics=args.topics, fps=args.fps)
    for frame in tqdm(frames, total=total, unit="frame", desc="reconstruct", disable=args.quiet):
        if args.max_frames is not None and len(names) + unplaced >= args.max_frames:
            break
        camera = camera or frame.camera
        if frame.camera != camera:
            skipped_other += 1
            continue
        try:
            result = session.process(frame)
        except AlignmentError as exc:
            unplaced += 1
            tqdm.write(f"frame {frame.index} (t={frame.stamp:.3f}) not placed: {exc}")
            continue
        resets += result.was_reset
        name = f"{frame.index:06d}"
        write_depth(out / "depth", name, result.frame.depth)
        write_confidence(out / "confidence", name, result.frame.depth_conf)
        names.append(name)
        stamps.append(result.stamp)
        poses.append(result.frame.cam_to_world)
        intrinsics.append(result.frame.intrinsics)
        model_s += result.timings["model_s"]
        size = result.frame.size
    if not names:
        raise Fin3rError(f"{args.input}: no frame could be reconstructed (input kind {kind}, camera {camera!r})")

    points, colors = session.map_cloud()
    write_ply(out / "map.ply", points, colors)
    write_tum(out / "trajectory.txt", stamps, poses)
    write_intrinsics(out / "intrinsics.json", np.stack(intrinsics), size, names)
    shown = [names[i] for i in np.linspace(0, len(names) - 1, min(4, len(names))).round().astype(int)]
    depths = [(n, np.load(out / "depth" / f"{n}.npy")) for n in shown]
    write_previews(out, points, colors, depths, np.stack(poses))
    summary = {
        "input": str(args.input),
        "kind": kind,
        "camera": camera,
        "model": args.model,
        "checkpoint": args.checkpoint,
        "adapter": args.adapter,
        "frames": len(names),
        "keyframes": session.num_keyframes,
        "map_points": len(points),
        "not_placed": unplaced,
        "other_camera_skipped": skipped_other,
        "time_resets": resets,
        "model_s_per_frame": model_s / len(names),
        "wall_s": time.perf_counter() - start,
        "session": asdict(config),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(
        f"fin3r reconstruct: {len(names)} frames ({session.num_keyframes} keyframes), {len(points)} map points -> {out}"
    )
    return 0
