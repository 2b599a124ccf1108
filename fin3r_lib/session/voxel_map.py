"""A bounded, voxel-downsampled colour point map (one centroid and mean colour per voxel)."""

from __future__ import annotations

import numpy as np

from fin3r_lib.errors import InputError

_BITS = 21  # bits per axis of a packed voxel key
_HALF = 1 << (_BITS - 1)


class VoxelMap:
    """Points averaged per voxel of `voxel_size`; at most `max_points` voxels.

    When a batch pushes the map over `max_points`, the voxels observed least recently (by batch) are
    dropped first (among voxels last seen in the same batch, those of the smallest packed key), so a
    moving camera keeps its surroundings. Points farther than 2^20 voxels from the origin on an axis
    are ignored.

    Each voxel's sums live in a slot of preallocated arrays, updated in place; a sorted index of the
    voxels' keys gives their slots. Adding a batch of B points to a map of M voxels costs O(B log B)
    for the batch, O(B log M) to look its voxels up, and copies of the index (two integers a voxel)
    when voxels come or go; the sums are not re-sorted (the earlier whole-map sort made each insert
    grow with the map). `cloud()` and `state_dict()` give the voxels in key order: they gather the
    sums into slots 0..N-1 in key order (one pass, into a second set of arrays kept for the next time).
    Sums accumulate one point at a time in point order: (old + p1) + p2 + ... Not thread-safe, reads
    included (`cloud()` moves voxels): callers serialize every call, as the node does with its runner lock.
    """

    def __init__(self, voxel_size: float, max_points: int) -> None:
        self.voxel_size = float(voxel_size)
        self.max_points = int(max_points)
        self.clear()

    def clear(self) -> None:
        """Remove every point."""
        self._keys = np.zeros(0, np.int64)  # packed keys of the voxels in the map, sorted
        self._slots = np.zeros(0, np.int64)  # each key's slot in the arrays below
        self._sums = np.zeros((0, 3), np.float64)
        self._color_sums = np.zeros((0, 3), np.float64)
        self._counts = np.zeros(0, np.float64)
        self._last_seen = np.zeros(0, np.int64)
        self._free = np.zeros(0, np.int64)  # slots holding no voxel (zeroed)
        self._spare: tuple[np.ndarray, ...] | None = None  # arrays to gather into (`_in_key_order`)
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
        batch_keys, inverse = np.unique(keys, return_inverse=True)
        slots = self._slots_of(batch_keys)[inverse]  # each point's slot
        for total, values in ((self._sums, points[inside]), (self._color_sums, colors[inside])):
            for axis in range(3):  # unbuffered, in point order
                np.add.at(total[:, axis], slots, values[:, axis].astype(np.float64))
        np.add.at(self._counts, slots, 1.0)
        self._last_seen[slots] = self._batch
        if len(self._keys) > self.max_points:
            self._drop_least_recent(len(self._keys) - self.max_points)

    def _slots_of(self, batch_keys: np.ndarray) -> np.ndarray:
        """Slots of the sorted unique `batch_keys`, new voxels (zeroed slots) made for those not in the map."""
        at = np.searchsorted(self._keys, batch_keys)
        known = at < len(self._keys)
        known[known] = self._keys[at[known]] == batch_keys[known]
        slots = np.empty(len(batch_keys), np.int64)
        slots[known] = self._slots[at[known]]
        new = ~known
        if new.any():
            slots[new] = fresh = self._take_free_slots(int(new.sum()))
            self._keys = np.insert(self._keys, at[new], batch_keys[new])
            self._slots = np.insert(self._slots, at[new], fresh)
        return slots

    def _take_free_slots(self, n: int) -> np.ndarray:
        """`n` zeroed slots, the arrays grown when too few are free (at most to the bound plus this batch)."""
        if len(self._free) < n:
            old = len(self._counts)
            size = max(old + n - len(self._free), min(2 * old, self.max_points + n), 1024)
            grow = size - old
            self._sums = np.concatenate([self._sums, np.zeros((grow, 3))])
            self._color_sums = np.concatenate([self._color_sums, np.zeros((grow, 3))])
            self._counts = np.concatenate([self._counts, np.zeros(grow)])
            self._last_seen = np.concatenate([self._last_seen, np.zeros(grow, np.int64)])
            self._free = np.concatenate([self._free, np.arange(old, size, dtype=np.int64)])
        taken, self._free = self._free[:n], self._free[n:]
        return taken

    def _drop_least_recent(self, n: int) -> None:
        """Remove the `n` voxels seen least recently (ties: the smallest keys) and free their slots."""
        last = np.take(self._last_seen, self._slots)
        cut = np.partition(last, n - 1)[n - 1]  # the n-th smallest
        drop = last < cut
        drop[np.flatnonzero(last == cut)[: n - int(drop.sum())]] = True  # the index is in key order
        freed = self._slots[drop]
        self._sums[freed], self._color_sums[freed], self._counts[freed], self._last_seen[freed] = 0.0, 0.0, 0.0, 0
        self._free = np.concatenate([self._free, freed])
        self._keys, self._slots = self._keys[~drop], self._slots[~drop]

    def state_dict(self) -> dict[str, np.ndarray]:
        """The map's state as arrays in key order (copies: `add` updates the map in place; a run's resume
        state); `load_state_dict` restores it exactly."""
        sums, color_sums, counts, last_seen = self._in_key_order()
        return {
            "keys": self._keys.copy(),
            "sums": sums.copy(),
            "color_sums": color_sums.copy(),
            "counts": counts.copy(),
            "last_seen": last_seen.copy(),
            "batch": np.int64(self._batch),
        }

    def _in_key_order(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Views of (sums, colour sums, counts, last seen) of the map's voxels in key order.

        Moves the voxels to slots 0..N-1 in key order first, unless they are there already: one gather
        into a second set of arrays of the same size, kept for the next move (no new memory each time).
        """
        n = len(self._keys)
        if not np.array_equal(self._slots, np.arange(n)):
            current = (self._sums, self._color_sums, self._counts, self._last_seen)
            if self._spare is None or len(self._spare[2]) != len(self._counts):
                self._spare = tuple(np.zeros_like(a) for a in current)
            for old, new in zip(current, self._spare, strict=True):
                np.take(old, self._slots, axis=0, out=new[:n])
                new[n:] = 0
            (self._sums, self._color_sums, self._counts, self._last_seen), self._spare = self._spare, current
            self._slots = np.arange(n, dtype=np.int64)
            self._free = np.arange(n, len(self._counts), dtype=np.int64)
        return self._sums[:n], self._color_sums[:n], self._counts[:n], self._last_seen[:n]

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
        self._slots = np.arange(n, dtype=np.int64)
        self._sums = arrays["sums"].astype(np.float64)
        self._color_sums = arrays["color_sums"].astype(np.float64)
        self._counts = arrays["counts"].astype(np.float64)
        self._last_seen = arrays["last_seen"].astype(np.int64)
        self._free = np.zeros(0, np.int64)
        self._spare = None
        self._batch = int(state["batch"])

    def cloud(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) float32 voxel centroids and (N, 3) uint8 mean colours, in key order."""
        sums, color_sums, counts, _ = self._in_key_order()
        counts = counts[:, None]
        points = (sums / np.maximum(counts, 1)).astype(np.float32)
        colors = np.clip(np.round(color_sums / np.maximum(counts, 1)), 0, 255).astype(np.uint8)
        return points, colors
