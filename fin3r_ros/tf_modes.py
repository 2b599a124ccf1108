"""TF modes of the node and lookups in the robot's own TF tree.

`tf_mode`:
- `publish`: map -> camera optical frame (the reconstruction owns the camera's TF);
- `map_to_odom`: map -> odom, chosen so that map -> odom -> ... -> camera through the robot's own tree
  reproduces the reconstruction's camera pose (REP 105, as SLAM packages do);
- `none`: no TF.
Lookups go through `tf2_ros.Buffer` when tf2_ros imports (a ROS install), else through the package's
own `TfBuffer` fed from /tf and /tf_static (PyPI wheels only); `TfLookup.lookup` is the one code path.
Lookups come from the node's worker thread, never the executor's: the own buffer is guarded by a lock
(a condition the /tf callbacks notify), tf2's buffer is thread-safe. A transform not yet known (odometry
published after the image) is waited for up to `wait_s` while the executor keeps receiving /tf.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile

from fin3r_lib.data.tf_buffer import TfBuffer, TfError
from fin3r_lib.geometry import rigid_inverse
from fin3r_ros.conversions.transform import transform_to_matrix
from fin3r_ros.tf_publisher import TF_QOS

TF_MODES = ("publish", "map_to_odom", "none")

#: QoS of /tf_static (latched)
TF_STATIC_QOS = QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def map_to_odom(map_from_camera: np.ndarray, odom_from_camera: np.ndarray) -> np.ndarray:
    """map <- odom 4x4 such that (map <- odom) @ (odom <- camera) == map <- camera."""
    return np.asarray(map_from_camera, dtype=np.float64) @ rigid_inverse(np.asarray(odom_from_camera, np.float64))


class TfLookup:
    """`lookup(target, source, stamp_ns)` in the robot's TF tree, heard on /tf and /tf_static by `node`.

    `cache_s`: how much history is kept (own buffer: older dynamic samples are dropped). `wait_s`: how long
    a lookup waits for a transform that is not known yet; `late` counts the lookups that got it by waiting.
    """

    def __init__(self, node: Node, cache_s: float = 10.0, wait_s: float = 0.0) -> None:
        self.cache_s = cache_s
        self.wait_s = wait_s
        self.late = 0
        self.waiting = False  # a lookup is waiting now
        self._lock = threading.Lock()
        self._heard_new = threading.Condition(self._lock)
        try:
            from rclpy.duration import Duration
            from tf2_ros import Buffer, TransformListener
        except ImportError:
            from tf2_msgs.msg import TFMessage

            self.backend = "fin3r_lib.TfBuffer"
            self._own = TfBuffer()
            node.create_subscription(TFMessage, "/tf", lambda m: self._heard(m, False), TF_QOS)
            node.create_subscription(TFMessage, "/tf_static", lambda m: self._heard(m, True), TF_STATIC_QOS)
        else:
            self.backend = "tf2_ros"
            self._tf2 = Buffer(cache_time=Duration(seconds=cache_s), node=node)
            self._listener = TransformListener(self._tf2, node, spin_thread=False)

    def _heard(self, msg, static: bool) -> None:
        with self._heard_new:
            self._own.add_message(msg, static=static)
            if not static and msg.transforms:
                newest = max(t.header.stamp.sec + t.header.stamp.nanosec * 1e-9 for t in msg.transforms)
                self._own.prune_before(newest - self.cache_s)
            self._heard_new.notify_all()

    def lookup(self, target: str, source: str, stamp_ns: int, wait_s: float | None = None) -> np.ndarray:
        """4x4 taking points in `source` to `target` at `stamp_ns`; TfError when it is not known within
        `wait_s` (default: the instance's). Never call it with a wait on the thread that spins the node."""
        wait_s = self.wait_s if wait_s is None else wait_s
        try:
            return self._lookup_now(target, source, stamp_ns)
        except TfError:
            if wait_s <= 0:
                raise
        self.waiting = True
        try:
            found = self._lookup_waiting(target, source, stamp_ns, wait_s)
        finally:
            self.waiting = False
        self.late += 1
        return found

    def _lookup_now(self, target: str, source: str, stamp_ns: int) -> np.ndarray:
        if self.backend != "tf2_ros":
            with self._lock:
                return self._own.lookup(target, source, stamp_ns * 1e-9)
        return self._tf2_lookup(target, source, stamp_ns, 0.0)

    def _lookup_waiting(self, target: str, source: str, stamp_ns: int, wait_s: float) -> np.ndarray:
        if self.backend == "tf2_ros":
            return self._tf2_lookup(target, source, stamp_ns, wait_s)
        deadline = time.monotonic() + wait_s
        with self._heard_new:
            while True:
                try:
                    return self._own.lookup(target, source, stamp_ns * 1e-9)
                except TfError:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise
                    self._heard_new.wait(left)

    def _tf2_lookup(self, target: str, source: str, stamp_ns: int, timeout_s: float) -> np.ndarray:
        from rclpy.duration import Duration
        from rclpy.time import Time

        try:
            tr = self._tf2.lookup_transform(target, source, Time(nanoseconds=stamp_ns), Duration(seconds=timeout_s))
        except Exception as exc:  # tf2 raises LookupException / ExtrapolationException / ...
            raise TfError(f"{target} <- {source} at {stamp_ns * 1e-9:.9f} s: {exc}") from exc
        return transform_to_matrix(tr)
