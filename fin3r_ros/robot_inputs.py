"""What a robot knows about each image, gathered for the node: the paired camera_info and sensor depth, the
undistortion (`rectify`) and the odometry pose of the camera at the image's stamp.

Callbacks (executor thread) feed `add_companion` / `add_image` and get back the images that are decided
(`fin3r_lib.data.pairing.StampPairer`, guarded by its own lock: never the runner's); an image still
waiting for its companions `pairing_timeout_s` (node clock) after it arrived is decided by
`release_expired` (the node's timer) with what has arrived; the worker turns a
decided image into the extra fields of its `Frame` with `frame_fields`. Nothing here waits for a
transform: a pose not in the TF buffer yet is counted and the frame goes on without it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from typing import Any

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from fin3r_lib.data.pairing import PairedImage, StampPairer
from fin3r_lib.data.tf_buffer import TfError
from fin3r_ros.conversions import CameraModel, camera_info_to_model, check_camera_info_matches, depth_image_to_array
from fin3r_ros.conversions.errors import ConversionError
from fin3r_ros.publishers import LOG_THROTTLE_S
from fin3r_ros.rectify import Rectifier, distortion_warning, fit_depth, is_distorted
from fin3r_ros.tf_modes import TfLookup


class RobotInputs:
    """See the module docstring; `values` are the node's parameters."""

    def __init__(self, node: Node, values: dict[str, Any]) -> None:
        self.node = node
        self.values = values
        self.streams = ("camera_info", "depth") if values["scale_source"] == "depth" else ("camera_info",)
        self._pairer = StampPairer(self.streams, values["pairing_tolerance_s"], wait_for_unheard=False)
        self._lock = threading.Lock()
        self.timeout_ns = round(values["pairing_timeout_s"] * 1e9)
        self.heard: Counter[str] = Counter()  # companion messages received, per stream
        self._rectifier = Rectifier() if values["rectify"] else None
        self.distortion_warned = False
        needs_odometry = values["scale_source"] == "odometry" or values["tf_mode"] == "map_to_odom"
        self.tf = TfLookup(node, wait_s=values["tf_wait_s"]) if needs_odometry else None
        self.odometry_missing = 0  # frames whose odom -> camera transform was not known
        self.depth_rejected = 0  # paired sensor depth images that could not be used
        self.depth_resized = 0  # paired sensor depth images of another size than their image (resized, nearest)

    def add_companion(self, stream: str, msg: CameraInfo | Image, stamp_ns: int) -> list[PairedImage]:
        """A camera_info or sensor depth message (callback); returns the images it decided."""
        with self._lock:
            self.heard[stream] += 1
            return _unwrap(self._pairer.add_companion(stream, stamp_ns, msg))

    def add_image(self, item: Any, stamp_ns: int) -> list[PairedImage]:
        """An image (callback); returns the images decided now, in arrival order."""
        arrived_ns = self.node.get_clock().now().nanoseconds
        with self._lock:
            return _unwrap(self._pairer.add_image(stamp_ns, (item, arrived_ns)))

    def release_expired(self) -> list[PairedImage]:
        """Timer: decide the images that waited `pairing_timeout_s` or more (or whose arrival is in the future:
        the clock went back), nearest companion within the tolerance else unpaired; returns them in order."""
        now_ns = self.node.get_clock().now().nanoseconds
        with self._lock:
            return _unwrap(self._pairer.release_waiting(lambda w: not 0 <= now_ns - w[1] < self.timeout_ns))

    def frame_fields(
        self, rgb: np.ndarray, paired: dict[str, Any], frame_id: str, stamp_ns: int
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """(rgb, rectified when asked; Frame fields: intrinsics, distortion, depth, cam_to_world) of one image.

        ConversionError when the camera_info does not fit the image (the frame is then skipped).
        """
        fields: dict[str, Any] = {}
        info = paired.get("camera_info")
        camera = None
        if info is not None:
            camera = camera_info_to_model(info)
            check_camera_info_matches(camera, rgb.shape[:2])
            fields["intrinsics"] = camera.K
            if is_distorted(camera):
                if self._rectifier is not None:
                    rgb = self._rectifier(rgb, camera)
                else:
                    fields["distortion"] = np.asarray(camera.distortion, dtype=np.float64)
                    if not self.distortion_warned:
                        self.distortion_warned = True
                        self.node.get_logger().warning(distortion_warning(camera))
        depth_msg = paired.get("depth")
        if depth_msg is not None:
            fields["depth"] = self._sensor_depth(depth_msg, rgb.shape[:2], camera)
        if self.tf is not None:
            try:
                fields["cam_to_world"] = self.tf.lookup(self.values["odom_frame"], frame_id, stamp_ns)
            except TfError as exc:
                self.odometry_missing += 1
                self.node.get_logger().warning(
                    f"no odometry for this frame: {exc}", throttle_duration_sec=LOG_THROTTLE_S
                )
        return rgb, fields

    def _sensor_depth(self, msg: Image, size: tuple[int, int], camera: CameraModel | None) -> np.ndarray | None:
        """The paired depth at the image's `size` (nearest, see `fit_depth`), undistorted like it with `rectify`."""
        try:
            depth = depth_image_to_array(msg)
            if depth.shape != size:
                depth = fit_depth(depth, size)
                self.depth_resized += 1
            if camera is not None and self._rectifier is not None:
                depth = self._rectifier.depth(depth, camera)
        except ConversionError as exc:
            self.depth_rejected += 1
            self.node.get_logger().warning(f"sensor depth not used: {exc}", throttle_duration_sec=LOG_THROTTLE_S)
            return None
        return depth

    def diagnostics(self) -> dict[str, str]:
        """Key-values for /diagnostics: pairing counts, odometry misses, distortion."""
        with self._lock:
            counts = self._pairer.counts
            values = {"images paired": str(counts.images), "images decided by pairing timeout": str(counts.timed_out)}
            values.update({f"images without {k}": str(v) for k, v in counts.unpaired.items()})
        values["frames without odometry"] = str(self.odometry_missing)
        if self.tf is not None:
            values["frames whose odometry came late (waited for)"] = str(self.tf.late)
        values["sensor depth rejected"] = str(self.depth_rejected)
        values["sensor depth resized"] = str(self.depth_resized)
        if self.distortion_warned:
            values["input distortion"] = "non-zero D with rectify: false (images used as they are)"
        return values


def _unwrap(decided: list[PairedImage]) -> list[PairedImage]:
    """The decided images without the arrival time `add_image` kept with each."""
    return [dataclasses.replace(p, image=p.image[0]) for p in decided]
