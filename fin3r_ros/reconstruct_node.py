"""The reconstruction node: camera images in; depth, clouds, map, pose, path, TF and diagnostics out.

Callbacks only store the newest image (with the latest camera_info) in a `FrameWorker`; its thread
converts, runs the `ReconstructionSession` and publishes. Errors of one frame (bad message, backend
failure, non-finite output) become a throttled log line and a diagnostics counter; the node keeps
serving. The model loads at start-up: `main()` exits non-zero with one clear message when it cannot.
Topics, parameters and frames are documented in `fin3r_ros.parameters` and the README.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import rclpy
import rclpy.executors
import rclpy.logging
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from fin3r_lib.data.frame import Frame
from fin3r_lib.errors import Fin3rError, InputError, ModelLoadError
from fin3r_lib.models.base import ReconstructionModel
from fin3r_lib.session import ReconstructionSession, SessionResult
from fin3r_ros.conversions import (
    array_to_image,
    camera_info_to_model,
    check_camera_info_matches,
    compressed_to_rgb,
    image_to_rgb,
    matrix_to_pose,
    matrix_to_transform,
    model_to_camera_info,
    points_to_cloud,
    scale_intrinsics,
    stamp_to_seconds,
)
from fin3r_ros.diagnostics import NodeStats
from fin3r_ros.frame_worker import FrameWorker
from fin3r_ros.parameters import declare_parameters, help_text, session_config
from fin3r_ros.tf_publisher import TfPublisher, points_to_map, to_map

STREAM_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
LOG_THROTTLE_S = 5.0


@dataclass
class _Received:
    """What a callback hands to the worker."""

    msg: Image | CompressedImage
    camera_info: CameraInfo | None
    received: float  # time.monotonic() at the callback


def input_qos(reliability: str, depth: int) -> QoSProfile:
    """QoS of the image and camera_info subscriptions (sensor data: keep last, volatile)."""
    policy = ReliabilityPolicy.BEST_EFFORT if reliability == "best_effort" else ReliabilityPolicy.RELIABLE
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=policy)


def load_model(values: dict[str, Any]) -> ReconstructionModel:
    """Build the model the parameters name; ModelLoadError with the cause on any failure."""
    import torch

    from fin3r_lib.models import load_model as load_named_model

    dtypes = {"auto": torch.float32, "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    return load_named_model(
        values["model"],
        values["checkpoint"],
        device=values["device"],
        dtype=dtypes[values["precision"]],
        adapter=values["adapter"],
        tool="ros",
    )


class ReconstructNode(Node):
    """See the module docstring. `model` injects an already-built backbone (tests); None builds it from parameters."""

    def __init__(self, model: ReconstructionModel | None = None, *, node_name: str = "reconstruct_node", **kwargs: Any):
        super().__init__(node_name, **kwargs)
        try:
            self.values = declare_parameters(self)
            self.model = model if model is not None else load_model(self.values)
            self.session = ReconstructionSession(self.model, session_config(self.values))
            self.model_name = self.model.name or type(self.model).__name__
        except Exception:
            super().destroy_node()
            raise
        v = self.values
        self.stats = NodeStats()
        self._lock = threading.Lock()  # the session: worker vs reset service
        self._camera_info: CameraInfo | None = None
        self._path = Path()
        self._latched_at = -float("inf")  # when path and map last went out
        self._map_keyframes = -1

        self.pub_depth = self.create_publisher(Image, "depth", STREAM_QOS)
        self.pub_depth_info = self.create_publisher(CameraInfo, "depth/camera_info", STREAM_QOS)
        self.pub_confidence = self.create_publisher(Image, "confidence", STREAM_QOS)
        self.pub_points = self.create_publisher(PointCloud2, "points", STREAM_QOS)
        self.pub_map = self.create_publisher(PointCloud2, "map", LATCHED_QOS)
        self.pub_pose = self.create_publisher(PoseStamped, "pose", STREAM_QOS)
        self.pub_path = self.create_publisher(Path, "path", LATCHED_QOS)
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.tf = TfPublisher(self) if v["tf_mode"] == "publish" else None

        qos = input_qos(v["qos_reliability"], v["qos_depth"])
        if v["image_transport"] == "compressed":
            self.create_subscription(CompressedImage, "image/compressed", self._on_image, qos)
        else:
            self.create_subscription(Image, "image", self._on_image, qos)
        self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, qos)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_timer(1.0 / v["diagnostics_rate_hz"], self._publish_diagnostics)

        self.worker: FrameWorker[_Received] = FrameWorker(
            self._process, self._on_worker_error, name=f"{node_name}_worker"
        )
        self.worker.start()
        topic = "image/compressed" if v["image_transport"] == "compressed" else "image"
        self.get_logger().info(
            f"model {self.model_name} ready; subscribing {topic} ({v['qos_reliability']}), TF {v['tf_mode']}"
        )

    # callbacks (executor thread): store and return
    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _on_image(self, msg: Image | CompressedImage) -> None:
        self.stats.frame_received()
        self.worker.put(_Received(msg, self._camera_info, time.monotonic()))

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            dropped = self.session.num_keyframes
            self._reset_outputs()
        response.success = True
        response.message = f"reconstruction reset ({dropped} keyframes dropped)"
        self.get_logger().info(response.message)
        return response

    def _publish_diagnostics(self) -> None:
        status = self.stats.status(f"{self.get_name()}: reconstruction", self.model_name, self.worker.dropped)
        self.pub_diagnostics.publish(
            DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[status])
        )

    # worker thread
    def _on_worker_error(self, item: _Received, exc: BaseException) -> None:
        kind = type(exc).__name__
        self.stats.error(kind)
        expected = isinstance(exc, Fin3rError)
        detail = f"{kind}: {exc}" if expected else f"backend failure {kind}: {exc}"
        self.get_logger().warning(f"frame dropped: {detail}", throttle_duration_sec=LOG_THROTTLE_S)

    def _decode(self, item: _Received) -> tuple[np.ndarray, Header]:
        """RGB of the message (checked against its camera_info) and the header outputs carry."""
        msg = item.msg
        rgb = compressed_to_rgb(msg) if isinstance(msg, CompressedImage) else image_to_rgb(msg)
        if item.camera_info is not None:
            check_camera_info_matches(camera_info_to_model(item.camera_info), rgb.shape[:2])
        header = Header(stamp=msg.header.stamp, frame_id=msg.header.frame_id or self.values["camera_frame"])
        return rgb, header

    def _process(self, item: _Received) -> None:
        rgb_in, header = self._decode(item)
        rgb = rgb_in
        max_side = self.values["input_max_side"]
        if max_side > 0 and max(rgb.shape[:2]) > max_side:
            scale = max_side / max(rgb.shape[:2])
            size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
            rgb = cv2.resize(rgb_in, size, interpolation=cv2.INTER_AREA)
        stamp = stamp_to_seconds(header.stamp)
        frame = Frame(rgb=rgb, stamp=stamp, frame_id=header.frame_id)
        with self._lock:
            result = self.session.process(frame)
            if result.was_reset:
                self.stats.resets += 1
                self._reset_outputs(clear_session=False)
                self.get_logger().warning(
                    f"image time went backwards (to {stamp:.3f} s): reconstruction reset",
                    throttle_duration_sec=LOG_THROTTLE_S,
                )
            self._publish_frame(result, header, rgb_in.shape[:2])
            self._maybe_publish_latched(header.stamp)
        self.stats.frame_published(
            result.timings["model_s"], result.timings["total_s"], time.monotonic() - item.received, result.is_keyframe
        )

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
        messages = [
            (self.pub_depth, array_to_image(depth, header)),
            (self.pub_depth_info, model_to_camera_info(k, depth.shape[1], depth.shape[0], header)),
            (self.pub_confidence, array_to_image(conf, header)),
            (
                self.pub_points,
                points_to_cloud(points_to_map(result.points[finite]), map_header, rgb=result.colors[finite]),
            ),
            (self.pub_pose, matrix_to_pose(cam_to_map, map_header)),
        ]
        transform = matrix_to_transform(cam_to_map, map_header, header.frame_id)
        for publisher, msg in messages:
            publisher.publish(msg)
        if self.tf is not None:
            self.tf.send([transform])
        self._path.header = map_header
        self._path.poses.append(messages[-1][1])
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

    def _reset_outputs(self, clear_session: bool = True) -> None:
        """Forget the path and publish an empty map (and reset the session unless it reset itself)."""
        if clear_session:
            self.session.reset()
        self._path = Path(header=Header(frame_id=self.values["map_frame"]))
        self.pub_path.publish(self._path)
        empty = np.zeros((0, 3), np.float32)
        self.pub_map.publish(points_to_cloud(empty, self._path.header, rgb=np.zeros((0, 3), np.uint8)))
        self._latched_at, self._map_keyframes = -float("inf"), 0

    def destroy_node(self) -> None:
        """Stop the worker (letting the current frame finish), then destroy the node."""
        self.worker.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Run the node until shutdown; returns 1 (after one error line) when the model or parameters are bad.

    `-h` / `--help` before `--ros-args` prints the usage and the parameters table and returns 0 (no model load).
    """
    argv = sys.argv if args is None else args
    own = argv[1 : argv.index("--ros-args")] if "--ros-args" in argv else argv[1:]
    if "-h" in own or "--help" in own:
        print(help_text(), end="")
        return 0
    context = rclpy.Context()
    rclpy.init(args=args, context=context)
    logger = rclpy.logging.get_logger("reconstruct_node")
    try:
        try:
            node = ReconstructNode(context=context)
        except (ModelLoadError, InputError) as exc:
            logger.error(str(exc))
            return 1
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        try:
            executor.spin()
        except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
            pass
        finally:
            node.destroy_node()
        return 0
    finally:
        if context.ok():
            context.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
