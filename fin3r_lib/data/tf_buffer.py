"""A small TF tree for bag replay: static and time-stamped transforms, looked up with interpolation.

Each child frame has one parent (a tree, as in tf2). Dynamic edges are interpolated at the query time
(slerp for rotation, lerp for translation); static edges hold at every time. ROS quaternions come in
(x, y, z, w) order and are converted to transforms3d's (w, x, y, z) in `xyzw_to_wxyz`, the one place.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import numpy as np

from fin3r_lib.errors import InputError
from fin3r_lib.geometry import rigid_inverse


class TfError(InputError):
    """A transform could not be looked up: unknown or unconnected frames, or a time outside the samples."""


def xyzw_to_wxyz(q_xyzw) -> np.ndarray:
    """A ROS (x, y, z, w) quaternion as a transforms3d (w, x, y, z) array."""
    x, y, z, w = (float(v) for v in q_xyzw)
    return np.array([w, x, y, z])


def matrix_from(translation, q_wxyz) -> np.ndarray:
    """4x4 float64 transform from a translation (3,) and a unit (w, x, y, z) quaternion.

    The rotation is transforms3d's `quat2mat` formula, computed on Python floats (a TF log has a sample per
    message, and numpy's per-call cost dominates at this size).
    """
    w, x, y, z = (float(v) for v in q_wxyz)
    tx, ty, tz = (float(v) for v in translation)
    s = 2.0 / (w * w + x * x + y * y + z * z)
    xs, ys, zs = x * s, y * s, z * s
    wx, wy, wz, xx, xy, xz, yy, yz, zz = w * xs, w * ys, w * zs, x * xs, x * ys, x * zs, y * ys, y * zs, z * zs
    return np.array(
        [
            [1.0 - (yy + zz), xy - wz, xz + wy, tx],
            [xy + wz, 1.0 - (xx + zz), yz - wx, ty],
            [xz - wy, yz + wx, 1.0 - (xx + yy), tz],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )


def slerp(q0: np.ndarray, q1: np.ndarray, s: float) -> np.ndarray:
    """Spherical interpolation of unit (w, x, y, z) quaternions, shortest path, s in [0, 1]."""
    dot = float(np.dot(q0, q1))
    if dot < 0.0:
        q1, dot = -q1, -dot
    if dot > 0.9995:  # nearly parallel: normalized lerp is exact to float precision
        q = q0 + s * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(dot)
    return (np.sin((1.0 - s) * theta) * q0 + np.sin(s * theta) * q1) / np.sin(theta)


@dataclass
class _Edge:
    """Samples of one parent -> child transform (a single sample with stamp None when static)."""

    parent: str
    static: bool
    stamps: list[float] = field(default_factory=list)
    translations: list[np.ndarray] = field(default_factory=list)
    quats: list[np.ndarray] = field(default_factory=list)  # (w, x, y, z)
    matrices: list[np.ndarray] = field(default_factory=list)

    def add(self, stamp: float, translation, q_wxyz: np.ndarray) -> None:
        m = matrix_from(translation, q_wxyz)
        t = m[:3, 3].copy()
        if self.static:
            self.stamps, self.translations, self.quats, self.matrices = [stamp], [t], [q_wxyz], [m]
            return
        i = bisect.bisect_left(self.stamps, stamp)
        if i < len(self.stamps) and self.stamps[i] == stamp:  # a repeated sample replaces the earlier one
            self.translations[i], self.quats[i], self.matrices[i] = t, q_wxyz, m
            return
        self.stamps.insert(i, stamp)
        self.translations.insert(i, t)
        self.quats.insert(i, q_wxyz)
        self.matrices.insert(i, m)

    def prune_before(self, stamp: float) -> None:
        """Drop samples older than `stamp`, keeping the last one before it (for interpolation)."""
        k = bisect.bisect_left(self.stamps, stamp) - 1
        if k > 0 and not self.static:
            del self.stamps[:k], self.translations[:k], self.quats[:k], self.matrices[:k]

    def at(self, stamp: float, child: str, tolerance: float) -> np.ndarray:
        """parent <- child transform at `stamp` (seconds); do not modify the returned array."""
        if self.static:
            return self.matrices[0]
        ts = self.stamps
        i = bisect.bisect_left(ts, stamp)
        if i < len(ts) and abs(ts[i] - stamp) <= tolerance:
            return self.matrices[i]
        if i > 0 and abs(ts[i - 1] - stamp) <= tolerance:
            return self.matrices[i - 1]
        if i == 0 or i == len(ts):
            raise TfError(
                f"{self.parent} -> {child}: time {stamp:.9f} s is outside the samples [{ts[0]:.9f}, {ts[-1]:.9f}] s"
            )
        s = (stamp - ts[i - 1]) / (ts[i] - ts[i - 1])
        t = (1.0 - s) * self.translations[i - 1] + s * self.translations[i]
        return matrix_from(t, slerp(self.quats[i - 1], self.quats[i], s))


class TfBuffer:
    """Transforms from /tf and /tf_static messages, queried as `lookup(target, source, stamp)`."""

    def __init__(self, tolerance: float = 1e-9) -> None:
        """`tolerance`: seconds within which a query uses a sample as is instead of interpolating."""
        self._edges: dict[str, _Edge] = {}  # keyed by child frame
        self._frames: set[str] | None = None  # `frames`, until an edge is added or replaced
        self.tolerance = tolerance

    def add(self, parent: str, child: str, stamp: float, translation, q_xyzw, static: bool = False) -> None:
        """Record parent <- child at `stamp` (seconds); the quaternion in ROS (x, y, z, w) order."""
        parent, child = parent.lstrip("/"), child.lstrip("/")
        edge = self._edges.get(child)
        if edge is None or edge.parent != parent or edge.static != static:
            edge = self._edges[child] = _Edge(parent, static)
            self._frames = None
        x, y, z, w = (float(v) for v in q_xyzw)
        n = math.hypot(x, y, z, w)
        if not n > 0.0:  # zero or NaN
            raise TfError(f"{parent} -> {child} at {stamp:.9f} s: expected a rotation quaternion, got {(x, y, z, w)}")
        edge.add(stamp, translation, xyzw_to_wxyz((x / n, y / n, z / n, w / n)))

    def add_message(self, msg, static: bool = False) -> None:
        """Record every TransformStamped of a tf2_msgs/TFMessage (rosbags or rclpy object)."""
        for tr in msg.transforms:
            stamp = tr.header.stamp.sec + tr.header.stamp.nanosec * 1e-9
            t, r = tr.transform.translation, tr.transform.rotation
            self.add(tr.header.frame_id, tr.child_frame_id, stamp, (t.x, t.y, t.z), (r.x, r.y, r.z, r.w), static)

    def prune_before(self, stamp: float) -> None:
        """Bound memory of a live tree: drop dynamic samples older than `stamp` (seconds) but the last one."""
        for edge in self._edges.values():
            edge.prune_before(stamp)

    @property
    def frames(self) -> set[str]:
        """Every frame named by a recorded transform (do not modify the returned set)."""
        if self._frames is None:
            self._frames = set(self._edges) | {e.parent for e in self._edges.values()}
        return self._frames

    def _chain(self, frame: str) -> list[str]:
        """`frame` and its ancestors up to the root."""
        chain = [frame]
        while chain[-1] in self._edges:
            chain.append(self._edges[chain[-1]].parent)
            if len(chain) > len(self._edges) + 1:
                raise TfError(f"the TF tree has a cycle through {frame!r}")
        return chain

    def root(self, frame: str) -> str:
        """The root frame of the tree holding `frame`."""
        return self._chain(frame.lstrip("/"))[-1]

    def _to_ancestor(self, chain: list[str], ancestor: str, stamp: float) -> np.ndarray | None:
        """ancestor <- chain[0] at `stamp`; None when they are the same frame (identity)."""
        m = None
        for child in chain[: chain.index(ancestor)]:
            edge = self._edges[child].at(stamp, child, self.tolerance)
            m = edge if m is None else edge @ m
        return m

    def lookup(self, target: str, source: str, stamp: float) -> np.ndarray:
        """4x4 transform taking points in `source` to `target` at `stamp` (seconds), float64."""
        target, source = target.lstrip("/"), source.lstrip("/")
        known = self.frames
        for name in (target, source):
            if name not in known:
                raise TfError(f"frame {name!r} is not in the TF tree; known frames: {sorted(known)}")
        up_source, up_target = self._chain(source), self._chain(target)
        common = next((f for f in up_source if f in up_target), None)
        if common is None:
            raise TfError(
                f"frames {target!r} and {source!r} are not connected (roots {up_target[-1]!r}, {up_source[-1]!r})"
            )
        t_common_source = self._to_ancestor(up_source, common, stamp)
        t_common_target = self._to_ancestor(up_target, common, stamp)
        out = np.eye(4) if t_common_source is None else t_common_source.copy()
        return out if t_common_target is None else rigid_inverse(t_common_target) @ out
