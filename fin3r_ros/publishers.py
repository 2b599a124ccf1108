"""`RosPublishers`: the `Runner` sink that publishes a frame's results on the reconstruction node's topics.

Per reconstructed frame: `depth` (32FC1, NaN invalid), `depth/camera_info`, `confidence`, `points`
(map frame), `pose`, TF (`tf_mode: publish`) and the path it extends; `map` and `path` (latched) at
most `map_rate_hz`. A skipped frame is counted in the node's `NodeStats` under its error's kind and
logged (throttled). `/diagnostics` goes out through `publish_diagnostics`. The sink publishes in the
ROS clock's world: headers carry the input image's stamp and frame id.
"""

from __future__ import annotations

import time
from typing import Any

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from fin3r_lib.data.frame import Frame
from fin3r_lib.runner import Runner, RunSummary, error_kind
from fin3r_lib.session import ReconstructionSession, SessionResult
from fin3r_ros.conversions import (
    array_to_image,
    matrix_to_pose,
    matrix_to_transform,
    model_to_camera_info,
    ns_to_stamp,
    points_to_cloud,
    scale_intrinsics,
)
from fin3r_ros.diagnostics import NodeStats
from fin3r_ros.tf_publisher import TfPublisher, points_to_map, to_map

STREAM_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
LOG_THROTTLE_S = 5.0


def frame_header(frame: Frame, default_frame_id: str) -> Header:
    """The header a frame's outputs carry: its exact stamp (`stamp_ns`, else `stamp`) and frame id."""
    ns = frame.stamp_ns if frame.stamp_ns is not None else round(frame.stamp * 1e9)
    return Header(stamp=ns_to_stamp(ns), frame_id=frame.frame_id or default_frame_id)


class RosPublishers:
    """See the module docstring; `values` are the node's parameters, `session` the runner's session."""

    def __init__(self, node: Node, values: dict[str, Any], session: ReconstructionSession, stats: NodeStats) -> None:
        self.node = node
        self.values = values
        self.session = session
        self.stats = stats
        #: (H, W) of the image being processed before input_max_side (`output_resolution: input`); set by the node
        self.input_size: tuple[int, int] | None = None
        self.pub_depth = node.create_publisher(Image, "depth", STREAM_QOS)
        self.pub_depth_info = node.create_publisher(CameraInfo, "depth/camera_info", STREAM_QOS)
        self.pub_confidence = node.create_publisher(Image, "confidence", STREAM_QOS)
        self.pub_points = node.create_publisher(PointCloud2, "points", STREAM_QOS)
        self.pub_map = node.create_publisher(PointCloud2, "map", LATCHED_QOS)
        self.pub_pose = node.create_publisher(PoseStamped, "pose", STREAM_QOS)
        self.pub_path = node.create_publisher(Path, "path", LATCHED_QOS)
        self.pub_diagnostics = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.tf = TfPublisher(node) if values["tf_mode"] == "publish" else None
        self._path = Path()
        self._latched_at = -float("inf")  # when path and map last went out
        self._map_keyframes = -1

    # Sink
    def on_frame(self, frame: Frame, result: SessionResult) -> None:
        """Publish the frame's messages (after clearing path and map when the session reset itself)."""
        header = frame_header(frame, self.values["camera_frame"])
        if result.was_reset:
            self.stats.resets += 1
            self.reset_outputs()
            self.node.get_logger().warning(
                f"image time went backwards (to {result.stamp:.3f} s): reconstruction reset",
                throttle_duration_sec=LOG_THROTTLE_S,
            )
        self._publish_frame(result, header, self.input_size or frame.size)
        self._maybe_publish_latched(header.stamp)

    def on_skip(self, source: str, reason: str) -> None:
        """Count the skipped frame under its error's kind and log it (throttled)."""
        self.stats.error(error_kind(reason))
        self.node.get_logger().warning(f"frame dropped: {reason}", throttle_duration_sec=LOG_THROTTLE_S)

    def on_finish(self, runner: Runner, summary: RunSummary) -> None:
        """Publish the final path and map (latched: late subscribers get them)."""
        self._latched_at = -float("inf")
        self._maybe_publish_latched(self.node.get_clock().now().to_msg())

    # the node's other outputs
    def publish_diagnostics(self, status: DiagnosticStatus) -> None:
        """Publish `status` on /diagnostics, stamped now."""
        header = Header(stamp=self.node.get_clock().now().to_msg())
        self.pub_diagnostics.publish(DiagnosticArray(header=header, status=[status]))

    def reset_outputs(self) -> None:
        """Forget the path and publish an empty path and map."""
        self._path = Path(header=Header(frame_id=self.values["map_frame"]))
        self.pub_path.publish(self._path)
        empty = np.zeros((0, 3), np.float32)
        self.pub_map.publish(points_to_cloud(empty, self._path.header, rgb=np.zeros((0, 3), np.uint8)))
        self._latched_at, self._map_keyframes = -float("inf"), 0

    def _publish_frame(self, result: SessionResult, header: Header, input_size: tuple[int, int]) -> None:
        """Build every per-frame message (any of them may reject the result), then publish them all."""
        f = result.frame
        depth = np.where(np.isfinite(f.depth) & (f.depth > 0), f.depth, np.nan).astype(np.float32)
        conf = np.nan_to_num(f.depth_conf, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
        k = f.intrinsics  # finite with positive focal lengths: the session checked it (check_intrinsics)
        if self.values["output_resolution"] == "input" and f.size != input_size:
            k = scale_intrinsics(k, f.size, input_size)
            dsize = (input_size[1], input_size[0])
            depth = cv2.resize(depth, dsize, interpolation=cv2.INTER_NEAREST)
            conf = cv2.resize(conf, dsize, interpolation=cv2.INTER_NEAREST)
        map_header = Header(stamp=header.stamp, frame_id=self.values["map_frame"])
        cam_to_map = to_map(f.cam_to_world)
        finite = np.isfinite(result.points).all(axis=1)
        pose = matrix_to_pose(cam_to_map, map_header)
        messages = [
            (self.pub_depth, array_to_image(depth, header)),
            (self.pub_depth_info, model_to_camera_info(k, depth.shape[1], depth.shape[0], header)),
            (self.pub_confidence, array_to_image(conf, header)),
            (
                self.pub_points,
                points_to_cloud(points_to_map(result.points[finite]), map_header, rgb=result.colors[finite]),
            ),
            (self.pub_pose, pose),
        ]
        transform = matrix_to_transform(cam_to_map, map_header, header.frame_id)
        for publisher, msg in messages:
            publisher.publish(msg)
        if self.tf is not None:
            self.tf.send([transform])
        self._path.header = map_header
        self._path.poses.append(pose)
        del self._path.poses[: -self.values["path_max_length"]]

    def _maybe_publish_latched(self, stamp: Any) -> None:
        """Publish `path`, and `map` when it changed, unless they went out less than 1 / map_rate_hz ago."""
        now = time.monotonic()
        if now - self._latched_at < 1.0 / self.values["map_rate_hz"]:
            return
        self.pub_path.publish(self._path)
        if self.session.num_keyframes != self._map_keyframes:
            points, colors = self.session.map_cloud()
            header = Header(stamp=stamp, frame_id=self.values["map_frame"])
            self.pub_map.publish(points_to_cloud(points_to_map(points), header, rgb=colors))
            self._map_keyframes = self.session.num_keyframes
        self._latched_at = now
