"""`LatchedOutputs`: the node's `path` and `map` (latched topics), published from an executor timer.

The worker only records: `add_pose` appends the frame's pose (O(1)) and, when the map changed (a new
keyframe or another scale), copies the runner's map (bounded by `max_map_points`) while it holds the
runner's lock anyway. `publish` runs on the executor's timer at `map_rate_hz`: it builds and publishes
the `Path` (poses that went out at another scale rescaled first) and the newest map copy, so per-frame
cost does not grow with the path and both keep coming while the worker is busy with the next frame.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header

from fin3r_lib.runner import Runner
from fin3r_ros.conversions import points_to_cloud
from fin3r_ros.output_publisher import create_output_publisher
from fin3r_ros.tf_publisher import points_to_map

LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
#: relative scale change after which `path` poses and `map` are rescaled / republished
RESCALE_TOLERANCE = 1e-3


class LatchedOutputs:
    """See the module docstring; every method but `publish` is called with the runner's lock held."""

    def __init__(self, node: Node, values: dict[str, Any], runner: Runner) -> None:
        self.node = node
        self.map_frame = values["map_frame"]
        self.path_max_length = values["path_max_length"]
        self.runner = runner
        self.pub_map = create_output_publisher(node, PointCloud2, "map", LATCHED_QOS)
        self.pub_path = create_output_publisher(node, Path, "path", LATCHED_QOS)
        self._lock = threading.Lock()  # the state below: worker vs timer
        self._poses: list[PoseStamped] = []
        self._pose_scales: list[float] = []  # the scale each pose went out with (1.0: model units)
        self._scale = 1.0  # the runner's scale at the newest pose
        self._stamp: Any = None  # stamp of the newest pose (the path's and map's header)
        self._path_changed = False
        self._map: tuple[np.ndarray, np.ndarray, Any] | None = None  # (points, colours, stamp) waiting to go out
        self._map_keyframes = -1  # keyframes (and scale) of the newest map copy
        self._map_scale = 1.0
        #: (poses, map points) of the latest `path` and `map` taken for publication
        self.published = (0, 0)

    @property
    def pending(self) -> bool:
        """True while a path or map change waits for the timer."""
        with self._lock:
            return self._path_changed or self._map is not None

    def add_pose(self, pose: PoseStamped, scale: float) -> None:
        """Worker: record the frame's pose (`scale`: the runner's now) and copy the map when it changed."""
        with self._lock:
            self._poses.append(pose)
            self._pose_scales.append(scale)
            del self._poses[: -self.path_max_length], self._pose_scales[: -self.path_max_length]
            self._scale, self._stamp, self._path_changed = scale, pose.header.stamp, True
            moved = abs(scale / self._map_scale - 1.0) > RESCALE_TOLERANCE
            if self.runner.session.num_keyframes != self._map_keyframes or moved:
                self._copy_map()

    def reset(self) -> None:
        """Forget the path; an empty path and map go out at the next tick."""
        with self._lock:
            self._poses, self._pose_scales, self._path_changed = [], [], True
            self._map = (np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8), self._stamp)
            self._map_keyframes, self._map_scale = 0, self._scale

    def publish(self) -> None:
        """Timer (executor thread, runner lock not needed): publish the path when it changed and the newest map."""
        with self._lock:
            poses = self._rescaled_poses() if self._path_changed else None
            path_stamp, cloud, self._map, self._path_changed = self._stamp, self._map, None, False
            self.published = (
                len(poses) if poses is not None else self.published[0],
                len(cloud[0]) if cloud is not None else self.published[1],
            )
        if poses is not None:
            self.pub_path.publish(Path(header=self._header(path_stamp), poses=poses))
        if cloud is not None:
            points, colors, stamp = cloud
            self.pub_map.publish(points_to_cloud(points_to_map(points), self._header(stamp), rgb=colors))

    def finish(self) -> None:
        """End of the run: publish the final path and map now (from the caller's thread)."""
        with self._lock:
            self._copy_map()
            self._path_changed = True
        self.publish()

    def _copy_map(self) -> None:
        """Own lock held: copy the runner's map (metric once the scale is known) to go out at the next tick."""
        points, colors = self.runner.map_cloud()
        self._map = (points, colors, self._stamp)
        self._map_keyframes, self._map_scale = self.runner.session.num_keyframes, self._scale

    def _rescaled_poses(self) -> list[PoseStamped]:
        """Own lock held: the path's poses, those that went out at another scale brought to the newest one."""
        scales = np.asarray(self._pose_scales)
        for i in np.flatnonzero(np.abs(scales / self._scale - 1.0) > RESCALE_TOLERANCE):
            p = self._poses[i].pose.position
            ratio = self._scale / self._pose_scales[i]
            p.x, p.y, p.z = p.x * ratio, p.y * ratio, p.z * ratio
            self._pose_scales[i] = self._scale
        return list(self._poses)

    def _header(self, stamp: Any) -> Header:
        """A `map_frame` header at `stamp` (now when no frame came yet)."""
        now = self.node.get_clock().now().to_msg()
        return Header(stamp=stamp if stamp is not None else now, frame_id=self.map_frame)
