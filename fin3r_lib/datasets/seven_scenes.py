"""The 7-Scenes layout: `frame-NNNNNN.color.png`, `.depth.png` (uint16 mm, 0 and 65535 invalid), `.pose.txt`.

Poses are camera-to-world 4x4 text files; intrinsics come from `camera-intrinsics.txt` when present,
else the published Kinect values (fx = fy = 585, cx = 320, cy = 240).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fin3r_lib.data.frame import Frame
from fin3r_lib.datasets.depth_files import read_depth, read_rgb, size_matches
from fin3r_lib.errors import InputError

KINECT_INTRINSICS = np.array([[585.0, 0.0, 320.0], [0.0, 585.0, 240.0], [0.0, 0.0, 1.0]])
FPS = 30.0


def is_seven_scenes(path: Path) -> bool:
    """True when `path` is a folder of 7-Scenes frames."""
    return path.is_dir() and any(path.glob("frame-*.color.png"))


def _intrinsics(folder: Path) -> np.ndarray:
    path = folder / "camera-intrinsics.txt"
    if not path.is_file():
        return KINECT_INTRINSICS.copy()
    k = np.loadtxt(path)
    if k.shape != (3, 3):
        raise InputError(f"{path}: expected a 3x3 matrix, got shape {k.shape}")
    return k


def _pose(path: Path) -> np.ndarray:
    pose = np.loadtxt(path)
    if pose.shape != (4, 4) or not np.isfinite(pose).all():
        raise InputError(f"{path}: expected a finite 4x4 camera-to-world matrix, got shape {pose.shape}")
    return pose


class SevenScenes:
    """A 7-Scenes sequence folder: iterate for its frames in order, stamped frame number / 30 fps."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.colors = sorted(folder.glob("frame-*.color.png"))
        if not self.colors:
            raise InputError(f"{folder}: expected 7-Scenes frames (frame-NNNNNN.color.png), found none")
        self.intrinsics = _intrinsics(folder)

    def __len__(self) -> int:
        return len(self.colors)

    def __iter__(self) -> Iterator[Frame]:
        for color in self.colors:
            yield _frame(color, self.intrinsics)


def _frame(color: Path, k: np.ndarray) -> Frame:
    """One 7-Scenes frame from its colour file (depth and pose beside it, when present)."""
    number = int(color.name.split(".")[0].split("-")[1])
    rgb = read_rgb(color)
    depth_path = color.with_name(color.name.replace(".color.png", ".depth.png"))
    depth = read_depth(depth_path, 1000.0, invalid=(0, 65535)) if depth_path.is_file() else None
    if depth is not None:
        size_matches(rgb, depth, depth_path)
    pose_path = color.with_name(color.name.replace(".color.png", ".pose.txt"))
    return Frame(
        rgb=rgb,
        stamp=number / FPS,
        camera=color.parent.name,
        intrinsics=k,
        cam_to_world=_pose(pose_path) if pose_path.is_file() else None,
        index=number,
        depth=depth,
        source=str(color),
    )
