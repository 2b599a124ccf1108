"""A bounded, voxel-downsampled colour point map (one centroid and mean colour per voxel)."""

from __future__ import annotations

import numpy as np

from fin3r_lib.errors import InputError

_BITS = 21  # bits per axis of a packed voxel key
_HALF = 1 << (_BITS - 1)


class VoxelMap:
    """Points averaged per voxel of `voxel_size`; at most `max_points` voxels.

    When a batch pushes the map over `max_points`, the voxels observed least recently (by batch) are
    dropped first, so a moving camera keeps its surroundings. Points farther than 2^20 voxels from the
    origin on an axis are ignored. Insertion costs O(M log M) for M = map size + batch size.
    """

    def __init__(self, voxel_size: float, max_points: int) -> None:
        self.voxel_size = float(voxel_size)
        self.max_points = int(max_points)
        self.clear()

    def clear(self) -> None:
        """Remove every point."""
        self._keys = np.zeros(0, np.int64)
        self._sums = np.zeros((0, 3), np.float64)
        self._color_sums = np.zeros((0, 3), np.float64)
        self._counts = np.zeros(0, np.float64)
        self._last_seen = np.zeros(0, np.int64)
        self._batch = 0

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, points: np.ndarray, colors: np.ndarray) -> None:
        """Merge (N, 3) points with their (N, 3) uint8 colours."""
        if points.ndim != 2 or points.shape[1] != 3 or colors.shape != points.shape:
            raise InputError(f"VoxelMap.add: expected (N, 3) points and colours, got {points.shape} and {colors.shape}")
        cells = np.floor(points.astype(np.float64) / self.voxel_size)
        inside = np.isfinite(cells).all(1) & (np.abs(cells) < _HALF).all(1)
        if not inside.any():
            return
        cells = cells[inside].astype(np.int64) + _HALF
        keys = (cells[:, 0] << (2 * _BITS)) | (cells[:, 1] << _BITS) | cells[:, 2]
        self._batch += 1
        n_old = len(self._keys)
        uniq, inverse = np.unique(np.concatenate([self._keys, keys]), return_inverse=True)
        all_points = np.concatenate([self._sums, points[inside].astype(np.float64)])
        all_colors = np.concatenate([self._color_sums, colors[inside].astype(np.float64)])
        all_counts = np.concatenate([self._counts, np.ones(len(keys))])
        self._sums = np.stack([np.bincount(inverse, all_points[:, i], len(uniq)) for i in range(3)], axis=1)
        self._color_sums = np.stack([np.bincount(inverse, all_colors[:, i], len(uniq)) for i in range(3)], axis=1)
        self._counts = np.bincount(inverse, all_counts, len(uniq))
        last_seen = np.zeros(len(uniq), np.int64)
        last_seen[inverse[:n_old]] = self._last_seen
        last_seen[inverse[n_old:]] = self._batch
        self._keys, self._last_seen = uniq, last_seen
        if len(uniq) > self.max_points:
            keep = np.sort(np.argpartition(-last_seen, self.max_points - 1)[: self.max_points])
            self._keys, self._last_seen = self._keys[keep], self._last_seen[keep]
            self._sums, self._color_sums, self._counts = self._sums[keep], self._color_sums[keep], self._counts[keep]

    def state_dict(self) -> dict[str, np.ndarray]:
        """The map's state as arrays (a run's resume state); `load_state_dict` restores it exactly."""
        return {
            "keys": self._keys,
            "sums": self._sums,
            "color_sums": self._color_sums,
            "counts": self._counts,
            "last_seen": self._last_seen,
            "batch": np.int64(self._batch),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore a `state_dict` (InputError when its arrays do not fit together)."""
        keys = np.asarray(state["keys"], np.int64)
        n = len(keys)
        arrays = {name: np.asarray(state[name]) for name in ("sums", "color_sums", "counts", "last_seen")}
        expected = {"sums": (n, 3), "color_sums": (n, 3), "counts": (n,), "last_seen": (n,)}
        for name, shape in expected.items():
            if arrays[name].shape != shape:
                raise InputError(f"VoxelMap state: expected {name} of shape {shape}, got {arrays[name].shape}")
        self._keys = keys
        self._sums = arrays["sums"].astype(np.float64)
        self._color_sums = arrays["color_sums"].astype(np.float64)
        self._counts = arrays["counts"].astype(np.float64)
        self._last_seen = arrays["last_seen"].astype(np.int64)
        self._batch = int(state["batch"])

    def cloud(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) float32 voxel centroids and (N, 3) uint8 mean colours."""
        counts = self._counts[:, None]
        points = (self._sums / np.maximum(counts, 1)).astype(np.float32)
        colors = np.clip(np.round(self._color_sums / np.maximum(counts, 1)), 0, 255).astype(np.uint8)
        return points, colors
