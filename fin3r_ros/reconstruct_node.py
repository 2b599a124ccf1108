"""The reconstruction node: camera images in; depth, clouds, map, pose, path, TF and diagnostics out.

Callbacks pair each image with its camera_info (and sensor depth) by stamp (`RobotInputs`) and store
the newest decided image in a `FrameWorker`; its thread
turns the message into a `Frame` and feeds the same `Runner` that `fin3r reconstruct` uses (same
`RunnerOptions`), whose `RosPublishers` sink publishes the results (more sinks: `add_sink`). Errors
of one frame (bad message, backend failure, non-finite output) become a throttled log line and a
diagnostics counter; the node keeps serving. The model loads at start-up: `main()` exits non-zero
with one clear message when it cannot. Topics, parameters and frames are documented in
`fin3r_ros.parameters` and the README.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import rclpy
import rclpy.executors
import rclpy.logging
from diagnostic_msgs.msg import KeyValue
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_srvs.srv import Trigger

from fin3r_lib.data.frame import Frame, SkippedFrame
from fin3r_lib.errors import Fin3rError, InputError, ModelLoadError
from fin3r_lib.model_options import ModelOptions
from fin3r_lib.models.base import ReconstructionModel
from fin3r_lib.models.loader import load_model
from fin3r_lib.runner import Runner, RunSummary, Sink, skip_reason
from fin3r_lib.session import ReconstructionSession
from fin3r_ros.conversions import compressed_to_rgb, image_to_rgb, stamp_to_ns
from fin3r_ros.diagnostics import NodeStats
from fin3r_ros.frame_worker import FrameWorker
from fin3r_ros.output_publisher import destroy_output_publisher
from fin3r_ros.param_overrides import check_overrides
from fin3r_ros.parameters import declare_parameters, runner_options
from fin3r_ros.publishers import LOG_THROTTLE_S, RosPublishers
from fin3r_ros.robot_inputs import RobotInputs


@dataclass
class _Received:
    """What a callback hands to the worker."""

    msg: Image | CompressedImage
    companions: dict[str, Any]  # paired camera_info / sensor depth (None where none paired)
    received: float  # time.monotonic() at the callback


def input_qos(reliability: str, depth: int) -> QoSProfile:
    """QoS of the image and camera_info subscriptions (sensor data: keep last, volatile)."""
    policy = ReliabilityPolicy.BEST_EFFORT if reliability == "best_effort" else ReliabilityPolicy.RELIABLE
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=policy)


class ReconstructCore:
    """The reconstruction pipeline on a node (plain `ReconstructNode` or managed `ReconstructLifecycleNode`).

    `_load` declares the parameters (once), loads the model and creates the runner and publishers;
    `_start_io` the subscriptions, the reset service, the diagnostics and path/map timers and the worker; `_stop_io`
    stops the worker and destroys what `_start_io` created; `_unload` drops the runner, the model and
    the publishers.
    """

    def _load(self: Any, model: ReconstructionModel | None) -> None:
        if not hasattr(self, "values"):
            self.values = declare_parameters(self)
        self.model = model if model is not None else load_model(ModelOptions.from_mapping(self.values), tool="ros")
        self.runner = Runner(self.model, runner_options(self.values))
        self.model_name = self.model.name or type(self.model).__name__
        self.stats = NodeStats()
        self._lock = threading.Lock()  # the runner: worker vs reset service
        self.inputs = RobotInputs(self, self.values)
        self._images = 0  # image messages taken by the worker (the frames' index)
        before = set(self.publishers)
        self.outputs = RosPublishers(self, self.values, self.runner, self.stats)
        self._own_publishers = [x for x in self.publishers if x not in before]
        self.runner.add_sink(self.outputs)

    def _start_io(self: Any) -> None:
        v = self.values
        before = [*self.subscriptions, *self.services, *self.timers]
        qos = input_qos(v["qos_reliability"], v["qos_depth"])
        self._image_topic = "image/compressed" if v["image_transport"] == "compressed" else "image"
        image_type = CompressedImage if v["image_transport"] == "compressed" else Image
        self.create_subscription(image_type, self._image_topic, self._on_image, qos)
        self.create_subscription(CameraInfo, "camera_info", lambda m: self._on_companion("camera_info", m), qos)
        if "depth" in self.inputs.streams:
            self.create_subscription(Image, "sensor_depth", lambda m: self._on_companion("depth", m), qos)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_timer(1.0 / v["diagnostics_rate_hz"], self._publish_diagnostics)
        self.create_timer(1.0 / v["map_rate_hz"], self.outputs.latched.publish)
        self.create_timer(v["pairing_timeout_s"] / 4, lambda: self._dispatch(self.inputs.release_expired()))
        self._io = [x for x in (*self.subscriptions, *self.services, *self.timers) if x not in before]
        self.worker: FrameWorker[_Received] = FrameWorker(
            self._process, self._on_worker_error, name=f"{self.get_name()}_worker"
        )
        self.worker.start()
        self.get_logger().info(
            f"model {self.model_name} ready; subscribing {self._image_topic} ({v['qos_reliability']}), "
            f"TF {v['tf_mode']}, scale {v['scale_source']}"
        )

    def _stop_io(self: Any) -> None:
        """Stop the worker (the current frame finishes), then destroy the subscriptions, service and timer."""
        self.worker.stop()
        destroy = {"Subscription": self.destroy_subscription, "Service": self.destroy_service}
        for entity in self._io:
            destroy.get(type(entity).__name__, self.destroy_timer)(entity)
        self._io = []

    def _unload(self: Any) -> None:
        """Drop the runner, the model and the publishers."""
        for publisher in self._own_publishers:
            destroy_output_publisher(self, publisher)
        del self.outputs, self.runner, self.model
        self._own_publishers = []

    @property
    def session(self) -> ReconstructionSession:
        """The runner's reconstruction session."""
        return self.runner.session

    @property
    def pub_depth(self) -> Publisher:
        """The `depth` publisher (its subscription count tells when a consumer is connected)."""
        return self.outputs.pub_depth

    def add_sink(self, sink: Sink) -> None:
        """Send every later result to `sink` too (e.g. an `OutputFolder`), after the ROS publishers."""
        with self._lock:
            self.runner.add_sink(sink)

    def finish(self) -> RunSummary:
        """End the run for every sink (`on_finish`: final map and path, an output folder's files)."""
        with self._lock:
            return self.runner.finish()

    # callbacks (executor thread): store and return
    def _on_companion(self, stream: str, msg: CameraInfo | Image) -> None:
        self._dispatch(self.inputs.add_companion(stream, msg, stamp_to_ns(msg.header.stamp)))

    def _on_image(self, msg: Image | CompressedImage) -> None:
        self.stats.frame_received()
        self._dispatch(self.inputs.add_image((msg, time.monotonic()), stamp_to_ns(msg.header.stamp)))

    def _dispatch(self, decided: list) -> None:
        for paired in decided:
            msg, received = paired.image
            self.worker.put(_Received(msg, paired.companions, received))

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            dropped = self.session.num_keyframes
            self.runner.reset()
            self.outputs.reset_outputs()
        response.success = True
        response.message = f"reconstruction reset ({dropped} keyframes dropped)"
        self.get_logger().info(response.message)
        return response

    def _publish_diagnostics(self) -> None:
        status = self.stats.status(f"{self.get_name()}: reconstruction", self.model_name, self.worker.dropped)
        extra = {**self.inputs.diagnostics(), **self.outputs.diagnostics()}
        status.values.extend(KeyValue(key=k, value=val) for k, val in extra.items())
        self.outputs.publish_diagnostics(status)

    # worker thread
    def _on_worker_error(self, item: _Received, exc: BaseException) -> None:
        kind = type(exc).__name__
        self.stats.error(kind)
        expected = isinstance(exc, Fin3rError)
        detail = f"{kind}: {exc}" if expected else f"backend failure {kind}: {exc}"
        self.get_logger().warning(f"frame dropped: {detail}", throttle_duration_sec=LOG_THROTTLE_S)

    def _to_frame(self, item: _Received, index: int) -> Frame:
        """The message as a Frame: exact stamp, header frame id, and what `RobotInputs` adds (camera K, sensor
        depth, odometry pose; RGB checked against its camera_info and undistorted with `rectify`)."""
        msg = item.msg
        rgb = compressed_to_rgb(msg) if isinstance(msg, CompressedImage) else image_to_rgb(msg)
        stamp_ns = stamp_to_ns(msg.header.stamp)
        frame_id = msg.header.frame_id or self.values["camera_frame"]
        rgb, fields = self.inputs.frame_fields(rgb, item.companions, frame_id, stamp_ns)
        return Frame(
            rgb=rgb,
            stamp=stamp_ns / 1e9,
            stamp_ns=stamp_ns,
            frame_id=frame_id,
            index=index,
            source=f"{self.resolve_topic_name(self._image_topic)} message {index}",
            **fields,
        )

    def _process(self, item: _Received) -> None:
        index, self._images = self._images, self._images + 1
        try:
            frame: Frame | SkippedFrame = self._to_frame(item, index)
        except Fin3rError as exc:
            frame = SkippedFrame(f"{self.resolve_topic_name(self._image_topic)} message {index}", skip_reason(exc))
        with self._lock:
            self.outputs.input_size = frame.size if isinstance(frame, Frame) else None
            result = self.runner.process(frame)
        if result is not None:
            latency = time.monotonic() - item.received
            timings = result.timings
            self.stats.frame_published(timings["model_s"], timings["total_s"], latency, result.is_keyframe)

    def destroy_node(self) -> None:
        """Stop the worker (letting the current frame finish), then destroy the node."""
        if hasattr(self, "worker"):
            self.worker.stop()
        super().destroy_node()  # type: ignore[misc]


class ReconstructNode(ReconstructCore, Node):
    """See the module docstring. `model` injects an already-built backbone (tests); None builds it from parameters."""

    def __init__(self, model: ReconstructionModel | None = None, *, node_name: str = "reconstruct_node", **kwargs: Any):
        Node.__init__(self, node_name, **kwargs)
        try:
            self._load(model)
        except Exception:
            Node.destroy_node(self)
            raise
        self._start_io()


def main(args: list[str] | None = None) -> int:
    """Run the node until shutdown; returns 1 (after one error line) when the model or parameters are bad.

    The console script (`fin3r_ros.node_entry`) answers `-h` / `--help` before this module is imported.
    """
    context = rclpy.Context()
    rclpy.init(args=args, context=context)
    logger = rclpy.logging.get_logger("reconstruct_node")
    try:
        try:
            check_overrides(context, "reconstruct_node", logger.warning)
            node = ReconstructNode(context=context)
        except (ModelLoadError, InputError) as exc:
            logger.error(str(exc))
            return 1
        spin_until_shutdown(node, context)
        return 0
    finally:
        if context.ok():
            context.try_shutdown()


def spin_until_shutdown(node: Node, context: rclpy.Context) -> None:
    """Spin `node` until Ctrl-C or shutdown, then destroy it."""
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()


if __name__ == "__main__":
    from fin3r_ros.node_entry import main as entry  # -h / --help as the console script answers it

    sys.exit(entry())
