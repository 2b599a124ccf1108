"""Reading colour and depth image files into `Frame` arrays (shared by the dataset readers)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fin3r_lib.errors import InputError


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{path}: expected a readable colour image, OpenCV could not decode it")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_depth(path: Path, scale: float, invalid: tuple[int, ...] = (0,)) -> np.ndarray:
    """A single-channel depth image as float32 metres (stored value / `scale`), NaN where invalid.

    `.npy` files are read as metres already (no pickle); image files must be 16-bit or 32-bit single channel.
    """
    if path.suffix == ".npy":
        depth = np.load(path, allow_pickle=False).astype(np.float32)
        if depth.ndim != 2:
            raise InputError(f"{path}: expected a 2-D depth array, got shape {depth.shape}")
        depth[~(depth > 0)] = np.nan
        return depth
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise InputError(f"{path}: expected a readable depth image, OpenCV could not decode it")
    if raw.ndim != 2 or raw.dtype not in (np.uint16, np.float32):
        raise InputError(f"{path}: expected a single-channel 16-bit or float depth image, got {raw.dtype} {raw.shape}")
    depth = raw.astype(np.float32) / np.float32(scale)
    bad = np.isin(raw, invalid) if raw.dtype == np.uint16 else ~(raw > 0)
    depth[bad] = np.nan
    return depth


def size_matches(rgb: np.ndarray, depth: np.ndarray, path: Path) -> None:
    """Raise InputError unless the depth map lies on the colour image's pixel grid."""
    if depth.shape != rgb.shape[:2]:
        raise InputError(f"{path}: expected depth of the colour image's size {rgb.shape[:2]}, got {depth.shape}")
