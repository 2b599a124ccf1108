"""Play a recorded sequence through the real reconstruction node, in one process: `fin3r reconstruct` via ROS.

Input: a folder of images (optionally only the files matching `--pattern`), a video or a bag
(`fin3r_lib.data.sources.open_frames`). Each frame is published as sensor_msgs/Image (with a
CameraInfo when intrinsics are known) to a `ReconstructNode`; the next frame goes when the node has
handled the previous one, so nothing is dropped. The node's runner gets an `OutputFolder` sink
besides its ROS publishers, so `--out` holds what `fin3r reconstruct` writes (depth, confidence,
frames.jsonl, trajectory.txt, map.ply, intrinsics.json, previews, summary.json), from the same
runner the robot runs.

`--checkpoint none` (the default with `vggt-tiny`) runs small random weights: the files show the
pipeline working, not a meaningful reconstruction (no trained tiny checkpoint exists).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from fin3r_lib.data.frame import Frame, SkippedFrame
from fin3r_lib.data.sources import input_kind, open_frames
from fin3r_lib.errors import Fin3rError, InputError
from fin3r_lib.model_options import ModelOptions
from fin3r_lib.models.registry import model_entry
from fin3r_lib.output_folder import OutputFolder, check_output_folder
from fin3r_lib.runner import Sink
from fin3r_ros.conversions import model_to_camera_info, rgb_to_image, seconds_to_stamp
from fin3r_ros.reconstruct_node import ReconstructNode

REPO = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = REPO.parent / "shared" / "data" / "7scenes-redkitchen-150-199"
DEFAULT_PATTERN = "*.color.png"  # the 7-Scenes layout: colour and depth PNGs side by side
DEFAULT_INTRINSICS = "camera-intrinsics.txt"
CAMERA_FRAME = "camera_optical_frame"
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
SENSOR = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)


def random_model(name: str, seed: int = 0) -> Any:
    """`name` with seeded random weights, usable in the demo (see `fin3r_lib.models.loader.load_model`)."""
    from fin3r_lib.models.loader import load_model

    return load_model(ModelOptions(name, "none", device="cpu", seed=seed))


def read_intrinsics(path: Path) -> np.ndarray:
    """A 3x3 camera matrix from a text file (7-Scenes' camera-intrinsics.txt); InputError otherwise."""
    try:
        k = np.loadtxt(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"intrinsics {path}: expected a text file with a 3x3 matrix, {exc}") from None
    if k.shape != (3, 3) or not np.isfinite(k).all():
        raise InputError(f"intrinsics {path}: expected a finite 3x3 matrix, got shape {k.shape}")
    return k


def read_frames(path: Path, pattern: str | None, fps: float) -> Iterator[Frame]:
    """Frames of `path`; with `pattern`, only the folder's files matching it (name order, stamped i / fps).

    Files the source cannot use are said on stderr and left out.
    """
    for item in open_frames(path, fps=fps, pattern=pattern):
        if isinstance(item, SkippedFrame):
            print(f"fin3r demo: skipped {item.source}: {item.reason}", file=sys.stderr)
            continue
        yield item


@dataclass
class Recording:
    """What the demo's recorder received from the node's topics."""

    depth: list[Image] = field(default_factory=list)
    pose: list[PoseStamped] = field(default_factory=list)


def play(
    frames: Iterator[Frame],
    intrinsics: np.ndarray | None,
    params: dict[str, Any],
    model: Any = None,
    max_frames: int | None = None,
    timeout_s: float = 120.0,
    sinks: Sequence[Sink] = (),
) -> tuple[Recording, dict[str, int]]:
    """Publish `frames` to a ReconstructNode (built from `params`, or around `model`) and record its outputs.

    `sinks` (e.g. an `OutputFolder`) get the node's runner results too; the run is finished for them at the end.
    """
    context = Context()
    rclpy.init(args=[], context=context)
    rec = Recording()
    try:
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        node = ReconstructNode(model, context=context, parameter_overrides=overrides)
        for sink in sinks:
            node.add_sink(sink)
        player = rclpy.create_node("demo_player", context=context)
        recorder = rclpy.create_node("demo_recorder", context=context)
        executor = SingleThreadedExecutor(context=context)
        for n in (node, player, recorder):
            executor.add_node(n)
        pub_image = player.create_publisher(Image, "image", SENSOR)
        pub_info = player.create_publisher(CameraInfo, "camera_info", SENSOR)
        recorder.create_subscription(Image, "depth", rec.depth.append, RELIABLE)
        recorder.create_subscription(PoseStamped, "pose", rec.pose.append, RELIABLE)

        def spin_until(predicate, timeout: float) -> bool:
            deadline = time.monotonic() + timeout
            while not predicate() and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.01)
            return predicate()

        if not spin_until(lambda: pub_image.get_subscription_count() and node.pub_depth.get_subscription_count(), 10.0):
            raise RuntimeError("the demo's player, node and recorder did not discover each other within 10 s")
        sent = 0
        for frame in frames:
            if max_frames is not None and sent >= max_frames:
                break
            header = Header(stamp=seconds_to_stamp(frame.stamp), frame_id=CAMERA_FRAME)
            k = frame.intrinsics if frame.intrinsics is not None else intrinsics
            if k is not None:
                heard = node.inputs.heard["camera_info"]
                pub_info.publish(model_to_camera_info(k, frame.size[1], frame.size[0], header))
                spin_until(lambda n=heard: node.inputs.heard["camera_info"] > n, 5.0)
            handled = node.worker.handled
            pub_image.publish(rgb_to_image(frame.rgb, header))
            if not spin_until(lambda n=handled: node.worker.handled > n and node.worker.wait_idle(0.0), timeout_s):
                raise RuntimeError(f"the node did not handle frame {sent} within {timeout_s} s")
            sent += 1
        summary = node.finish()
        # every reconstructed frame publishes depth and pose: wait for those of the last one
        spin_until(lambda: len(rec.depth) >= summary.frames and len(rec.pose) == len(rec.depth), 5.0)
        counts = {"sent": sent, "published": len(rec.depth), "rejected": sum(node.stats.errors.values())}
        node.destroy_node()
        return rec, counts
    finally:
        context.try_shutdown()


def main(argv: list[str] | None = None) -> int:
    """Command line: `python -m fin3r_ros.demo [input] [--out DIR] [--model NAME] [--checkpoint REF] ...`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", nargs="?", type=Path, default=DEFAULT_INPUT, help="image folder, video or bag")
    parser.add_argument("--out", type=Path, default=None, help="an empty or new folder (default: out/demo/<time>)")
    ModelOptions.add_arguments(parser)
    parser.set_defaults(model="vggt-tiny", checkpoint="none")
    parser.add_argument("--pattern", default=None, help=f"only these files of a folder (7-Scenes: {DEFAULT_PATTERN})")
    parser.add_argument("--intrinsics", type=Path, default=None, help="3x3 K text file, published as camera_info")
    parser.add_argument("--fps", type=float, default=30.0, help="stamp rate of folder frames")
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--input-max-side", type=int, default=320, help="the node's input_max_side")
    args = parser.parse_args(argv)

    seven_scenes = args.input.is_dir() and any(args.input.glob(DEFAULT_PATTERN))
    pattern = args.pattern or (DEFAULT_PATTERN if seven_scenes else None)
    k_file = args.intrinsics or (args.input / DEFAULT_INTRINSICS if seven_scenes else None)
    out = args.out or REPO / "out" / "demo" / time.strftime("%Y%m%d-%H%M%S")
    started = time.perf_counter()
    try:
        params = {**asdict(ModelOptions.from_args(args)), "input_max_side": args.input_max_side, "qos_depth": 10}
        settings = {"input": str(args.input.resolve()), "pattern": pattern, **params}
        model_entry(args.model)  # an unknown name or input fails before anything is written
        input_kind(args.input)
        intrinsics = read_intrinsics(k_file) if k_file is not None else None
        check_output_folder(out, resume=False)
        frames = read_frames(args.input, pattern, args.fps)
        _, counts = play(frames, intrinsics, params, None, args.max_frames, sinks=[OutputFolder(out, settings)])
    except Fin3rError as exc:  # bad model, checkpoint, input or output folder: one line, no traceback
        print(f"fin3r demo: error: {exc}", file=sys.stderr)
        return 1
    weights = f"checkpoint {args.checkpoint}" + (f", adapter {args.adapter}" if args.adapter else "")
    print(
        f"demo: {counts['sent']} frames of {args.input} through reconstruct_node ({args.model}, {weights}) in "
        f"{time.perf_counter() - started:.1f} s: {counts['published']} published, {counts['rejected']} rejected; "
        f"outputs in {out}"
    )
    return 0 if counts["published"] else 1


if __name__ == "__main__":
    sys.exit(main())
