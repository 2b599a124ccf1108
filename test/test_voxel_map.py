"""VoxelMap against a plain per-voxel reference: running sums in point order, the bound, tie order, resume."""

from __future__ import annotations

import numpy as np
import pytest

from fin3r_lib.session import VoxelMap

BITS, HALF = 21, 1 << 20


class ReferenceMap:
    """Per-voxel Python accumulation written from the documented behaviour, one point at a time."""

    def __init__(self, voxel_size: float, max_points: int) -> None:
        self.voxel_size, self.max_points = voxel_size, max_points
        self.voxels: dict[int, list[float]] = {}  # key -> [sx, sy, sz, r, g, b, count, last_seen]
        self.batch = 0

    def add(self, points: np.ndarray, colors: np.ndarray) -> None:
        self.batch += 1
        for p, c in zip(points.astype(np.float64), colors.astype(np.float64), strict=True):
            cell = [int(np.floor(v / self.voxel_size)) + HALF for v in p]
            key = (cell[0] << (2 * BITS)) | (cell[1] << BITS) | cell[2]
            acc = self.voxels.setdefault(key, [0.0] * 7 + [0])
            for i in range(3):
                acc[i] = acc[i] + float(p[i])  # Python floats: IEEE double, one add at a time
                acc[3 + i] = acc[3 + i] + float(c[i])
            acc[6] += 1.0
            acc[7] = self.batch
        excess = len(self.voxels) - self.max_points
        if excess > 0:  # least recently seen first, ties: the smallest key first
            for key in sorted(self.voxels, key=lambda k: (self.voxels[k][7], k))[:excess]:
                del self.voxels[key]

    def state(self) -> dict[str, np.ndarray]:
        keys = sorted(self.voxels)
        rows = np.array([self.voxels[k] for k in keys], np.float64).reshape(-1, 8)
        return {
            "keys": np.array(keys, np.int64),
            "sums": rows[:, :3],
            "color_sums": rows[:, 3:6],
            "counts": rows[:, 6],
            "last_seen": rows[:, 7].astype(np.int64),
        }


def _batches(rng: np.random.Generator, count: int, size: int):
    """Clouds drifting along x (new voxels each time), some points falling into voxels seen before."""
    for i in range(count):
        points = rng.normal(size=(size, 3)).astype(np.float32) * 0.3 + np.float32([0.15 * i, 0, 2])
        yield points, rng.integers(0, 256, (size, 3), dtype=np.uint8)


def _assert_same(vmap: VoxelMap, reference: ReferenceMap) -> None:
    got, want = vmap.state_dict(), reference.state()
    for name, expected in want.items():
        np.testing.assert_array_equal(got[name], expected, err_msg=name)


@pytest.mark.parametrize("cloud_every", [1, 3, 1000])  # cloud() re-lays the voxels out in key order
def test_map_equals_the_reference_bit_for_bit_through_the_bound(cloud_every: int) -> None:
    rng = np.random.default_rng(5)
    vmap, reference = VoxelMap(0.1, 400), ReferenceMap(0.1, 400)
    for i, (points, colors) in enumerate(_batches(rng, 12, 150)):
        vmap.add(points, colors)
        reference.add(points, colors)
        assert len(vmap) == min(len(reference.voxels), 400)
        if i % cloud_every == 0:
            centroids, mean_colors = vmap.cloud()
            state = reference.state()
            expected = (state["sums"] / state["counts"][:, None]).astype(np.float32)
            np.testing.assert_array_equal(centroids, expected)
            np.testing.assert_array_equal(mean_colors, np.round(state["color_sums"] / state["counts"][:, None]))
    assert len(reference.voxels) == 400  # the bound was reached and voxels were dropped
    _assert_same(vmap, reference)


def test_ties_at_the_bound_drop_the_smallest_keys() -> None:
    vmap = VoxelMap(1.0, 3)
    vmap.add(np.float32([[0.5, 0.5, 0.5], [1.5, 0.5, 0.5], [2.5, 0.5, 0.5]]), np.zeros((3, 3), np.uint8))
    vmap.add(np.float32([[5.5, 0.5, 0.5], [3.5, 0.5, 0.5]]), np.zeros((2, 3), np.uint8))
    centroids, _ = vmap.cloud()  # x = 0.5 and 1.5 were seen in the oldest batch with the smallest keys
    np.testing.assert_array_equal(centroids[:, 0], [2.5, 3.5, 5.5])


def test_a_restored_map_goes_on_exactly_as_the_uninterrupted_one() -> None:
    rng = np.random.default_rng(9)
    batches = list(_batches(rng, 10, 120))
    whole, first = VoxelMap(0.1, 300), VoxelMap(0.1, 300)
    for points, colors in batches:
        whole.add(points, colors)
    for points, colors in batches[:5]:
        first.add(points, colors)
    saved = first.state_dict()
    first.add(*batches[5])  # a later add does not change the saved arrays (the map updates in place)
    resumed = VoxelMap(0.1, 300)
    resumed.load_state_dict(saved)
    for points, colors in batches[5:]:
        resumed.add(points, colors)
    for name, value in whole.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[name], value, err_msg=name)
    np.testing.assert_array_equal(resumed.cloud()[0], whole.cloud()[0])
