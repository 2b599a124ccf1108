"""Image motion and sharpness measures used to pick keyframes (session gate and log extraction).

One place for both users: the live session's keyframe gate and `fin3r extract`'s frame selection.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fin3r_lib.errors import InputError


def to_gray(rgb: np.ndarray, max_side: int = 320) -> np.ndarray:
    """Grayscale uint8 copy of an RGB uint8 image, downscaled so its long side is at most `max_side`."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InputError(f"expected an RGB uint8 (H, W, 3) image, got {rgb.dtype} {rgb.shape}")
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    scale = max_side / max(gray.shape)
    if scale < 1.0:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return gray


@dataclass(frozen=True)
class Motion:
    """Median sparse optical flow between two images, in pixels of the full-resolution image.

    `tracked` is the fraction of corners tracked; `flow_px` is inf when too few corners track (treat
    as large motion: the view changed a lot or the image is featureless).
    """

    flow_px: float
    tracked: float


def sparse_flow(prev_rgb: np.ndarray, rgb: np.ndarray, max_side: int = 320, max_corners: int = 200) -> Motion:
    """Median Lucas-Kanade displacement of Shi-Tomasi corners from `prev_rgb` to `rgb` (same size)."""
    if prev_rgb.shape != rgb.shape:
        raise InputError(f"sparse_flow: images differ in size: {prev_rgb.shape} vs {rgb.shape}")
    g0, g1 = to_gray(prev_rgb, max_side), to_gray(rgb, max_side)
    scale = max(rgb.shape[:2]) / max(g0.shape)
    corners = cv2.goodFeaturesToTrack(g0, maxCorners=max_corners, qualityLevel=0.01, minDistance=7)
    if corners is None or len(corners) < 8:
        return Motion(float("inf"), 0.0)
    moved, status, _ = cv2.calcOpticalFlowPyrLK(g0, g1, corners, None, winSize=(21, 21), maxLevel=3)
    ok = status.reshape(-1).astype(bool)
    if ok.sum() < 8:
        return Motion(float("inf"), float(ok.mean()))
    disp = np.linalg.norm((moved - corners).reshape(-1, 2)[ok], axis=1)
    return Motion(float(np.median(disp) * scale), float(ok.mean()))


def sharpness(rgb: np.ndarray, max_side: int = 640) -> float:
    """Variance of the Laplacian of the grayscale image (higher = sharper); compare within one camera."""
    return float(cv2.Laplacian(to_gray(rgb, max_side), cv2.CV_64F).var())
