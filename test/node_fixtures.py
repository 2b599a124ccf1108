"""A reconstruction node wired to a camera and a recorder, all in one `RosHarness` (shared by test_node_*.py).

`NodeRig.send` publishes one frame (raw or compressed, with or without camera_info) and spins until
the node has handled it, so each test sees every frame processed and no timing decides a result.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import RosHarness
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage

from fin3r_lib.models.base import ReconstructionModel
from fin3r_ros.conversions import model_to_camera_info, rgb_to_compressed, rgb_to_image, seconds_to_stamp
from fin3r_ros.reconstruct_node import ReconstructNode

NAMESPACE = "/cam"
CAMERA_FRAME = "kinect_rgb_optical_frame"
SENSOR_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)

#: output topic -> (type, QoS the recorder subscribes with)
OUTPUTS: dict[str, tuple[type, QoSProfile]] = {
    "depth": (Image, RELIABLE),
    "depth/camera_info": (CameraInfo, RELIABLE),
    "confidence": (Image, RELIABLE),
    "points": (PointCloud2, RELIABLE),
    "pose": (PoseStamped, RELIABLE),
    "map": (PointCloud2, LATCHED),
    "path": (Path, LATCHED),
}

#: session settings that keep the node tests small and exact (every GT pixel kept)
TEST_PARAMS: dict[str, Any] = {"confidence_top_fraction": 1.0, "min_confidence": 1.0, "map_rate_hz": 1000.0}


def header(stamp: float, frame_id: str = CAMERA_FRAME) -> Header:
    """A header at `stamp` seconds."""
    return Header(stamp=seconds_to_stamp(stamp), frame_id=frame_id)


class NodeRig:
    """The node under test in namespace /cam, a camera publishing its inputs, and a recorder of its outputs."""

    def __init__(self, ros: RosHarness, model: ReconstructionModel, **params: Any) -> None:
        self.ros = ros
        values = {**TEST_PARAMS, **params}
        overrides = [Parameter(k, value=v) for k, v in values.items()]
        self.node = ReconstructNode(model, context=ros.context, namespace=NAMESPACE, parameter_overrides=overrides)
        ros.executor.add_node(self.node)
        ros.nodes.append(self.node)
        camera = ros.node("camera", namespace=NAMESPACE)
        self.pub_image = camera.create_publisher(Image, "image", SENSOR_QOS)
        self.pub_compressed = camera.create_publisher(CompressedImage, "image/compressed", SENSOR_QOS)
        self.pub_info = camera.create_publisher(CameraInfo, "camera_info", SENSOR_QOS)
        self.recorder = ros.node("recorder", namespace=NAMESPACE)
        self.got: dict[str, list[Any]] = defaultdict(list)
        for topic, (msg_type, qos) in OUTPUTS.items():
            self.recorder.create_subscription(msg_type, topic, self.got[topic].append, qos)
        self.recorder.create_subscription(TFMessage, "/tf", self.got["/tf"].append, RELIABLE)
        self.recorder.create_subscription(DiagnosticArray, "/diagnostics", self.got["/diagnostics"].append, RELIABLE)
        compressed = values.get("image_transport") == "compressed"
        image_pub = self.pub_compressed if compressed else self.pub_image
        matched = ros.spin_until(
            lambda: (
                image_pub.get_subscription_count() > 0
                and self.pub_info.get_subscription_count() > 0
                and self.node.pub_depth.get_subscription_count() > 0
            ),
            timeout=10.0,
        )
        assert matched, "node, camera and recorder did not discover each other"

    def publish_info(self, k: np.ndarray, size: tuple[int, int], stamp: float) -> None:
        """Publish a CameraInfo of K for images of `size` (h, w) and let the node cache it."""
        before = self.node.inputs.heard["camera_info"]
        self.pub_info.publish(model_to_camera_info(k, size[1], size[0], header(stamp)))
        assert self.ros.spin_until(lambda: self.node.inputs.heard["camera_info"] > before, timeout=5.0)

    def send_msg(
        self, msg: Image | CompressedImage, expect_output: bool = True, timeout: float = 30.0, latched: bool = True
    ) -> None:
        """Publish one image message and spin until the node handled it (and its depth arrived, if expected;
        with `latched`, until `path` and `map` went out with it too)."""
        handled, depths = self.node.worker.handled, len(self.got["depth"])
        (self.pub_compressed if isinstance(msg, CompressedImage) else self.pub_image).publish(msg)
        done = self.ros.spin_until(
            lambda: self.node.worker.handled > handled and self.node.worker.wait_idle(0.0), timeout=timeout
        )
        assert done, "the node did not handle the frame in time"
        if expect_output:
            assert self.ros.spin_until(lambda: len(self.got["depth"]) > depths, timeout=5.0), "no depth came out"
            if latched:
                self.wait_latched()
        else:
            self.ros.spin_for(0.05)
            assert len(self.got["depth"]) == depths, "a rejected frame produced outputs"

    def send(
        self,
        rgb: np.ndarray,
        stamp: float,
        k: np.ndarray | None = None,
        compressed: bool = False,
        expect_output: bool = True,
        latched: bool = True,
    ) -> None:
        """Publish `rgb` at `stamp` (after its camera_info when `k` is given) and wait for the node."""
        if k is not None:
            self.publish_info(k, rgb.shape[:2], stamp)
        msg = rgb_to_compressed(rgb, header(stamp), fmt="png") if compressed else rgb_to_image(rgb, header(stamp))
        self.send_msg(msg, expect_output, timeout=30.0, latched=latched)

    def wait_latched(self, timeout: float = 10.0) -> None:
        """Spin until the node's timer published `path` and `map` with everything recorded and both arrived."""
        latched = self.node.outputs.latched
        assert self.ros.spin_until(lambda: not latched.pending, timeout), "path/map were not published"
        poses, points = latched.published

        def arrived() -> bool:
            path, cloud = self.got["path"], self.got["map"]
            return bool(path and cloud) and len(path[-1].poses) == poses and cloud[-1].width == points

        assert self.ros.spin_until(arrived, timeout), "path/map did not arrive"

    def errors(self) -> int:
        """Frames the node rejected so far."""
        return sum(self.node.stats.errors.values())
