"""Play a recorded sequence through the real reconstruction node, in one process, and save what it publishes.

Input: a folder of images (optionally only the files matching `--pattern`), a video or a bag
(`fin3r_lib.data.sources.open_frames`). Each frame is published as sensor_msgs/Image (with a
CameraInfo when intrinsics are known) to a `ReconstructNode`; the next frame goes when the node has
handled the previous one, so nothing is dropped. Saved under `--out`: `map.ply` (the last `map`, map
frame), `depth/NNNNNN.png|.npy` (every `depth`), `trajectory.tum` (every `pose`, map frame),
`intrinsics.json` (every `depth/camera_info`), `map_preview.png` and `depth_preview.png`.

`--checkpoint none` (the default with `vggt-tiny`) runs small random weights: the files show the
pipeline working, not a meaningful reconstruction (no trained tiny checkpoint exists).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from fin3r_lib.data.frame import Frame, SkippedFrame
from fin3r_lib.data.sources import open_frames
from fin3r_lib.outputs import write_depth, write_intrinsics, write_ply, write_previews, write_tum
from fin3r_ros.conversions import (
    cloud_to_arrays,
    depth_image_to_array,
    model_to_camera_info,
    pose_to_matrix,
    rgb_to_image,
    seconds_to_stamp,
    stamp_to_seconds,
)
from fin3r_ros.reconstruct_node import ReconstructNode
from fin3r_ros.tf_publisher import MAP_FROM_OPTICAL_WORLD

REPO = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = REPO.parent / "shared" / "data" / "7scenes-redkitchen-150-199"
DEFAULT_PATTERN = "*.color.png"  # the 7-Scenes layout: colour and depth PNGs side by side
DEFAULT_INTRINSICS = "camera-intrinsics.txt"
CAMERA_FRAME = "camera_optical_frame"
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
SENSOR = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)


def random_model(name: str, seed: int = 0) -> Any:
    """`name` with seeded random weights, usable in the demo (see `fin3r_lib.models.load_model`)."""
    from fin3r_lib.models import load_model

    return load_model(name, "none", device="cpu", seed=seed)


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
    """What the demo's recorder received from the node."""

    depth: list[Image] = field(default_factory=list)
    info: list[CameraInfo] = field(default_factory=list)
    pose: list[PoseStamped] = field(default_factory=list)
    map: list[PointCloud2] = field(default_factory=list)


def play(
    frames: Iterator[Frame],
    intrinsics: np.ndarray | None,
    params: dict[str, Any],
    model: Any = None,
    max_frames: int | None = None,
    timeout_s: float = 120.0,
) -> tuple[Recording, dict[str, int]]:
    """Publish `frames` to a ReconstructNode (built from `params`, or around `model`) and record its outputs."""
    context = Context()
    rclpy.init(args=[], context=context)
    rec = Recording()
    try:
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        node = ReconstructNode(model, context=context, parameter_overrides=overrides)
        player = rclpy.create_node("demo_player", context=context)
        recorder = rclpy.create_node("demo_recorder", context=context)
        executor = SingleThreadedExecutor(context=context)
        for n in (node, player, recorder):
            executor.add_node(n)
        pub_image = player.create_publisher(Image, "image", SENSOR)
        pub_info = player.create_publisher(CameraInfo, "camera_info", SENSOR)
        recorder.create_subscription(Image, "depth", rec.depth.append, RELIABLE)
        recorder.create_subscription(CameraInfo, "depth/camera_info", rec.info.append, RELIABLE)
        recorder.create_subscription(PoseStamped, "pose", rec.pose.append, RELIABLE)
        recorder.create_subscription(PointCloud2, "map", rec.map.append, LATCHED)

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
                pub_info.publish(model_to_camera_info(k, frame.size[1], frame.size[0], header))
                spin_until(lambda h=header: node._camera_info is not None and node._camera_info.header == h, 5.0)
            handled = node.worker.handled
            pub_image.publish(rgb_to_image(frame.rgb, header))
            if not spin_until(lambda n=handled: node.worker.handled > n and node.worker.wait_idle(0.0), timeout_s):
                raise RuntimeError(f"the node did not handle frame {sent} within {timeout_s} s")
            sent += 1
        # every handled frame publishes depth, camera_info and pose: wait for all three of the last one
        spin_until(
            lambda: (
                len(rec.depth) + sum(node.stats.errors.values()) >= sent
                and len(rec.pose) == len(rec.info) == len(rec.depth)
            ),
            5.0,
        )
        if node.session.num_keyframes:
            spin_until(lambda: bool(rec.map) and rec.map[-1].width > 0, 5.0)
        counts = {"sent": sent, "published": len(rec.depth), "rejected": sum(node.stats.errors.values())}
        node.destroy_node()
        return rec, counts
    finally:
        context.try_shutdown()


def save(rec: Recording, out: Path) -> list[Path]:
    """Write the recording's files (see the module docstring); returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    depths = []
    for i, msg in enumerate(rec.depth):
        depth = depth_image_to_array(msg)
        written += write_depth(out / "depth", f"{i:06d}", depth)
        depths.append((f"{stamp_to_seconds(msg.header.stamp):.3f} s", depth))
    stamps = [stamp_to_seconds(p.header.stamp) for p in rec.pose]
    poses = np.stack([pose_to_matrix(p) for p in rec.pose]) if rec.pose else np.zeros((0, 4, 4))
    written.append(write_tum(out / "trajectory.tum", stamps, poses))
    if rec.info:
        ks = np.stack([np.reshape(m.k, (3, 3)) for m in rec.info])
        written.append(write_intrinsics(out / "intrinsics.json", ks, (rec.info[-1].height, rec.info[-1].width)))
    cloud = cloud_to_arrays(rec.map[-1]) if rec.map else {"points": np.zeros((0, 3)), "rgb": np.zeros((0, 3), np.uint8)}
    written.append(write_ply(out / "map.ply", cloud["points"], cloud["rgb"]))
    # previews are drawn in the first camera's optical axes (seen from above = its x-z plane)
    optical_points = cloud["points"] @ MAP_FROM_OPTICAL_WORLD[:3, :3]
    optical_poses = np.linalg.inv(MAP_FROM_OPTICAL_WORLD) @ poses
    written += write_previews(out, optical_points, cloud["rgb"], depths[-4:], optical_poses)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: `python -m fin3r_ros.demo [input] [--out DIR] [--model NAME] [--checkpoint REF] ...`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", nargs="?", type=Path, default=DEFAULT_INPUT, help="image folder, video or bag")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "demo")
    parser.add_argument("--model", default="vggt-tiny")
    parser.add_argument("--checkpoint", default="none", help="weights (see the node's checkpoint parameter)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--pattern", default=None, help=f"only these files of a folder (7-Scenes: {DEFAULT_PATTERN})")
    parser.add_argument("--intrinsics", type=Path, default=None, help="3x3 K text file, published as camera_info")
    parser.add_argument("--fps", type=float, default=30.0, help="stamp rate of folder frames")
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--input-max-side", type=int, default=320, help="the node's input_max_side")
    args = parser.parse_args(argv)

    seven_scenes = args.input.is_dir() and any(args.input.glob(DEFAULT_PATTERN))
    pattern = args.pattern or (DEFAULT_PATTERN if seven_scenes else None)
    k_file = args.intrinsics or (args.input / DEFAULT_INTRINSICS if seven_scenes else None)
    intrinsics = np.loadtxt(k_file) if k_file is not None else None
    params = {
        "model": args.model,
        "checkpoint": args.checkpoint,
        "device": args.device,
        "input_max_side": args.input_max_side,
        "map_rate_hz": 1000.0,  # every map change is recorded; the last one is saved
        "qos_depth": 10,
    }
    model = random_model(args.model) if args.checkpoint == "none" else None
    started = time.perf_counter()
    rec, counts = play(read_frames(args.input, pattern, args.fps), intrinsics, params, model, args.max_frames)
    written = save(rec, args.out)
    print(
        f"demo: {counts['sent']} frames of {args.input} through reconstruct_node ({args.model}, checkpoint "
        f"{args.checkpoint}) in {time.perf_counter() - started:.1f} s: {counts['published']} published, "
        f"{counts['rejected']} rejected; {len(written)} files in {args.out}"
    )
    return 0 if counts["published"] else 1


if __name__ == "__main__":
    sys.exit(main())
