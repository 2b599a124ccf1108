"""Ground-truth geometry of frames: world points from GT depth + K + pose, and a fused reference cloud.

When a sequence comes without a reference mesh, its GT cloud is fused from every frame's GT depth
and GT pose by voxel averaging (one centroid per voxel of `voxel_size`, the session map's VoxelMap),
so the evaluated map and the reference are sampled alike.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from fin3r_lib.data.frame import Frame
from fin3r_lib.errors import InputError
from fin3r_lib.geometry import unproject_depth
from fin3r_lib.session.voxel_map import VoxelMap


def has_ground_truth(frame: Frame, pose: bool = True) -> bool:
    """True when the frame carries GT depth and intrinsics (and a GT pose when `pose`)."""
    return frame.depth is not None and frame.intrinsics is not None and (not pose or frame.cam_to_world is not None)


def gt_world_points(frame: Frame, max_depth: float | None = None) -> np.ndarray:
    """(H, W, 3) float64 GT points of a frame in the GT world (NaN where depth is invalid or beyond max_depth)."""
    if not has_ground_truth(frame):
        raise InputError(
            f"frame {frame.source or frame.index}: expected GT depth, intrinsics and pose for ground-truth points"
        )
    depth = np.asarray(frame.depth, dtype=np.float64).copy()
    with np.errstate(invalid="ignore"):
        depth[~(depth > 0)] = np.nan
        if max_depth is not None:
            depth[depth > max_depth] = np.nan
    return unproject_depth(depth, frame.intrinsics, frame.cam_to_world)


class ReferenceCloud:
    """A GT cloud fused frame by frame (`add`), read with `points()`.

    Frames are buffered and merged into the voxel map `flush_points` points at a time: each merge that
    brings new voxels copies the map's key index, so merging every frame would cost O(frames x map size).
    The centroids are the same bit for bit (per voxel the points are summed in the same order either way).
    """

    def __init__(
        self, voxel_size: float, pixel_stride: int = 2, max_depth: float | None = None, flush_points: int = 4_000_000
    ) -> None:
        if not voxel_size > 0 or pixel_stride < 1:
            raise InputError(f"expected voxel_size > 0 and pixel_stride >= 1, got {voxel_size!r}, {pixel_stride!r}")
        self._map = VoxelMap(voxel_size, max_points=2**62)
        self.pixel_stride = pixel_stride
        self.max_depth = max_depth
        self.flush_points = flush_points
        self._pending: list[np.ndarray] = []
        self._pending_points = 0

    def _flush(self) -> None:
        if self._pending:
            pts = np.concatenate(self._pending)
            self._map.add(pts, np.zeros(pts.shape, np.uint8))
            self._pending, self._pending_points = [], 0

    def add(self, frame: Frame, points: np.ndarray | None = None) -> None:
        """Fuse the GT points of one frame (every `pixel_stride`-th row and column); `points`: its
        `gt_world_points` when already computed."""
        s = self.pixel_stride
        pts = (gt_world_points(frame, self.max_depth) if points is None else points)[::s, ::s].reshape(-1, 3)
        self._pending.append(pts[np.isfinite(pts).all(1)])
        self._pending_points += len(self._pending[-1])
        if self._pending_points >= self.flush_points:
            self._flush()

    def points(self) -> np.ndarray:
        """(N, 3) float64 voxel centroids."""
        self._flush()
        return self._map.cloud()[0].astype(np.float64)


def fuse_reference_cloud(
    frames: Iterable[Frame], voxel_size: float = 0.02, pixel_stride: int = 2, max_depth: float | None = None
) -> np.ndarray:
    """The GT cloud of `frames` fused by voxel averaging, (N, 3) float64."""
    cloud = ReferenceCloud(voxel_size, pixel_stride, max_depth)
    for frame in frames:
        cloud.add(frame)
    return cloud.points()
