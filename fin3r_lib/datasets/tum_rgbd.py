"""The TUM RGB-D layout: `rgb.txt`, `depth.txt`, `groundtruth.txt`, associated by time.

Each colour image is paired with the depth image and ground-truth pose nearest in time, kept when
within `max_difference` seconds (TUM's `associate.py` default 0.02 s); unpaired colour images are
skipped and counted (`TumSequence.skipped`). Depth PNGs are uint16 with 5000 units per metre.
Poses `tx ty tz qx qy qz qw` are the optical centre in the world (camera-to-world). Intrinsics: the
published ones of the sequence's camera (freiburg1/2/3, from the folder name) unless given.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from transforms3d.quaternions import quat2mat

from fin3r_lib.data.frame import Frame
from fin3r_lib.datasets.depth_files import read_depth, read_rgb, size_matches
from fin3r_lib.errors import InputError

DEPTH_SCALE = 5000.0
#: fx, fy, cx, cy of the TUM RGB-D cameras (the dataset's published calibration)
CAMERAS = {
    "freiburg1": (517.3, 516.5, 318.6, 255.3),
    "freiburg2": (520.9, 521.0, 325.1, 249.7),
    "freiburg3": (535.4, 539.2, 320.1, 247.6),
}


def is_tum_rgbd(path: Path) -> bool:
    """True when `path` is a TUM RGB-D sequence folder."""
    return path.is_dir() and (path / "rgb.txt").is_file() and (path / "depth.txt").is_file()


def read_list(path: Path, columns: int) -> tuple[np.ndarray, list[list[str]]]:
    """Stamps and the remaining fields of a TUM list file (`#` comments skipped)."""
    stamps, rows = [], []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != columns + 1:
            raise InputError(f"{path}:{n}: expected {columns + 1} fields, got {len(fields)}: {line!r}")
        stamps.append(float(fields[0]))
        rows.append(fields[1:])
    return np.asarray(stamps), rows


def nearest_within(stamps: np.ndarray, targets: np.ndarray, max_difference: float) -> np.ndarray:
    """Index into sorted `stamps` nearest to each target, -1 where none lies within `max_difference`."""
    if not len(stamps):
        return np.full(len(targets), -1)
    right = np.minimum(np.searchsorted(stamps, targets), len(stamps) - 1)
    left = np.maximum(right - 1, 0)
    pick = np.where(np.abs(stamps[left] - targets) <= np.abs(stamps[right] - targets), left, right)
    return np.where(np.abs(stamps[pick] - targets) <= max_difference, pick, -1)


def camera_intrinsics(folder: Path) -> np.ndarray:
    """The published intrinsics of the folder's camera (by `freiburgN` in its name)."""
    for name, (fx, fy, cx, cy) in CAMERAS.items():
        if name in folder.name:
            return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    raise InputError(f"{folder}: expected 'freiburg1/2/3' in a TUM RGB-D folder name, or pass intrinsics")


class TumSequence:
    """A TUM RGB-D sequence: iterate for `Frame`s with depth and pose (see the module docstring)."""

    def __init__(self, folder: Path, max_difference: float = 0.02, intrinsics: np.ndarray | None = None) -> None:
        self.folder = folder
        self.intrinsics = camera_intrinsics(folder) if intrinsics is None else np.asarray(intrinsics, np.float64)
        self.rgb_stamps, rgb = read_list(folder / "rgb.txt", 1)
        depth_stamps, depth = read_list(folder / "depth.txt", 1)
        gt_path = folder / "groundtruth.txt"
        gt_stamps, gt = read_list(gt_path, 7) if gt_path.is_file() else (np.zeros(0), [])
        self.rgb_files = [r[0] for r in rgb]
        d_order, g_order = np.argsort(depth_stamps), np.argsort(gt_stamps)
        d_idx = nearest_within(depth_stamps[d_order], self.rgb_stamps, max_difference)
        g_idx = nearest_within(gt_stamps[g_order], self.rgb_stamps, max_difference)
        self.depth_files = [depth[d_order[i]][0] if i >= 0 else None for i in d_idx]
        values = np.asarray([[float(v) for v in row] for row in gt]).reshape(-1, 7)
        self.poses = [self._pose(values[g_order[i]]) if i >= 0 else None for i in g_idx]
        self.skipped = [
            {"source": str(folder / f), "reason": "no depth image within the time tolerance"}
            for f, d in zip(self.rgb_files, self.depth_files, strict=True)
            if d is None
        ]

    @staticmethod
    def _pose(row: np.ndarray) -> np.ndarray:
        pose = np.eye(4)
        pose[:3, :3] = quat2mat([row[6], row[3], row[4], row[5]])  # file order x y z w
        pose[:3, 3] = row[:3]
        return pose

    def __iter__(self) -> Iterator[Frame]:
        for i, (rgb_file, depth_file) in enumerate(zip(self.rgb_files, self.depth_files, strict=True)):
            if depth_file is None:
                continue
            rgb = read_rgb(self.folder / rgb_file)
            depth = read_depth(self.folder / depth_file, DEPTH_SCALE)
            size_matches(rgb, depth, self.folder / depth_file)
            yield Frame(
                rgb=rgb,
                stamp=float(self.rgb_stamps[i]),
                camera=self.folder.name,
                intrinsics=self.intrinsics,
                cam_to_world=self.poses[i],
                index=i,
                depth=depth,
                source=str(self.folder / rgb_file),
            )
