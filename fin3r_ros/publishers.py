"""`RosPublishers`: the `Runner` sink that publishes a frame's results on the reconstruction node's topics.

Per reconstructed frame: `depth` (32FC1, NaN invalid), `depth/camera_info`, `confidence`, `points`
(map frame), `pose`, TF and the pose it adds to `path`; `map` and `path` (latched) go out from an executor
timer at most `map_rate_hz` (`LatchedOutputs`: the worker only records).
TF: `tf_mode: publish` sends map -> camera; `map_to_odom` sends map -> odom, (map <- camera) times the
inverse of the frame's odometry pose (odom <- camera, `Frame.cam_to_world`), so that the robot's own
tree composed with it gives the reconstructed camera. Results come from the runner already in metres
once its scale is known; `path` poses published before a scale change are rescaled when it goes out,
and `map` is republished when the scale moved. `diagnostics()` gives the predicted/camera focal ratio
and the scale estimate. A skipped frame is counted in the node's `NodeStats` under its error's kind and
logged (throttled). `/diagnostics` goes out through `publish_diagnostics`. The sink publishes in the
ROS clock's world: headers carry the input image's stamp and frame id.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from fin3r_lib.data.frame import Frame
from fin3r_lib.geometry import resize_nearest, rigid_inverse
from fin3r_lib.runner import Runner, RunSummary, error_kind
from fin3r_lib.session import SessionResult
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
from fin3r_ros.intrinsics import focal_ratio_diagnostics
from fin3r_ros.latched_outputs import LatchedOutputs
from fin3r_ros.output_publisher import create_output_publisher
from fin3r_ros.tf_publisher import TfPublisher, points_to_map, to_map

STREAM_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
LOG_THROTTLE_S = 5.0


def frame_header(frame: Frame, default_frame_id: str) -> Header:
    """The header a frame's outputs carry: its exact stamp (`stamp_ns`, else `stamp`) and frame id."""
    ns = frame.stamp_ns if frame.stamp_ns is not None else round(frame.stamp * 1e9)
    return Header(stamp=ns_to_stamp(ns), frame_id=frame.frame_id or default_frame_id)


class RosPublishers:
    """See the module docstring; `values` are the node's parameters, `runner` the runner this sink is added to."""

    def __init__(self, node: Node, values: dict[str, Any], runner: Runner, stats: NodeStats) -> None:
        self.node = node
        self.values = values
        self.runner = runner
        self.session = runner.session
        self.stats = stats
        #: (H, W) of the image being processed before input_max_side (`output_resolution: input`); set by the node
        self.input_size: tuple[int, int] | None = None
        self.pub_depth = create_output_publisher(node, Image, "depth", STREAM_QOS)
        self.pub_depth_info = create_output_publisher(node, CameraInfo, "depth/camera_info", STREAM_QOS)
        self.pub_confidence = create_output_publisher(node, Image, "confidence", STREAM_QOS)
        self.pub_points = create_output_publisher(node, PointCloud2, "points", STREAM_QOS)
        self.pub_pose = create_output_publisher(node, PoseStamped, "pose", STREAM_QOS)
        self.latched = LatchedOutputs(node, values, runner)
        self.pub_diagnostics = create_output_publisher(node, DiagnosticArray, "/diagnostics", 10)
        self.tf = TfPublisher(node) if values["tf_mode"] != "none" else None
        self._focal: dict[str, str] = {}

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
        estimate = self.runner.scale_estimate
        if estimate.scale is None and self.values["scale_source"] != "none":
            self.node.get_logger().warning(estimate.status, throttle_duration_sec=LOG_THROTTLE_S)
        if result.model_intrinsics is not None:
            self._focal = focal_ratio_diagnostics(result.model_intrinsics, result.frame.intrinsics)
        self._publish_frame(frame, result, header, self.input_size or frame.size)

    def on_skip(self, source: str, reason: str) -> None:
        """Count the skipped frame under its error's kind and log it (throttled)."""
        self.stats.error(error_kind(reason))
        self.node.get_logger().warning(f"frame dropped: {reason}", throttle_duration_sec=LOG_THROTTLE_S)

    def on_finish(self, runner: Runner, summary: RunSummary) -> None:
        """Publish the final path and map (latched: late subscribers get them)."""
        self.latched.finish()

    # the node's other outputs
    def diagnostics(self) -> dict[str, str]:
        """Key-values for /diagnostics: predicted/camera focal ratio (with a camera_info) and the scale estimate."""
        estimate = self.runner.scale_estimate
        values = dict(self._focal)
        values["scale source"] = self.values["scale_source"]
        values["scale (m per model unit)"] = "unknown" if estimate.scale is None else f"{estimate.scale:.5f}"
        values["scale spread"] = f"{estimate.spread:.4f}"
        values["scale samples"] = str(estimate.samples)
        values["scale status"] = estimate.status
        return values

    def publish_diagnostics(self, status: DiagnosticStatus) -> None:
        """Publish `status` on /diagnostics, stamped now."""
        header = Header(stamp=self.node.get_clock().now().to_msg())
        self.pub_diagnostics.publish(DiagnosticArray(header=header, status=[status]))

    def reset_outputs(self) -> None:
        """Forget the path; an empty path and map go out at the latched outputs' next tick."""
        self.latched.reset()

    def _transform(self, frame: Frame, cam_to_map: np.ndarray, map_header: Header, child: str) -> Any:
        """The frame's TF: map -> camera, or map -> odom (None without the frame's odometry pose)."""
        if self.values["tf_mode"] == "publish":
            return matrix_to_transform(cam_to_map, map_header, child)
        if frame.cam_to_world is None:
            return None
        map_from_odom = cam_to_map @ rigid_inverse(np.asarray(frame.cam_to_world, dtype=np.float64))
        return matrix_to_transform(map_from_odom, map_header, self.values["odom_frame"])

    def _publish_frame(self, frame: Frame, result: SessionResult, header: Header, input_size: tuple[int, int]) -> None:
        """Build every per-frame message (any of them may reject the result), then publish them all."""
        f = result.frame
        depth = np.where(np.isfinite(f.depth) & (f.depth > 0), f.depth, np.nan).astype(np.float32)
        conf = np.nan_to_num(f.depth_conf, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
        k = f.intrinsics  # finite with positive focal lengths: the session checked it (check_intrinsics)
        if self.values["output_resolution"] == "input" and f.size != input_size:
            k = scale_intrinsics(k, f.size, input_size)
            depth, conf = resize_nearest(depth, input_size), resize_nearest(conf, input_size)
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
        transform = self._transform(frame, cam_to_map, map_header, header.frame_id) if self.tf is not None else None
        for publisher, msg in messages:
            publisher.publish(msg)
        if transform is not None:
            self.tf.send([transform])
        self.latched.add_pose(pose, self.runner.scale_estimate.scale or 1.0)
