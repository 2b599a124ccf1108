"""The camera's own intrinsics on the node's output grid, and how far the model's guess is from them."""

from __future__ import annotations

import numpy as np

from fin3r_ros.conversions.camera_info import CameraModel, scale_intrinsics
from fin3r_ros.conversions.errors import ConversionError


def camera_k_on_grid(camera: CameraModel, size: tuple[int, int]) -> np.ndarray:
    """The camera's K (3, 3) for its images resized to `size` (h, w), the grid of the published outputs."""
    return scale_intrinsics(camera.K, camera.size, size)


def focal_ratio(predicted_k: np.ndarray, camera_k: np.ndarray) -> tuple[float, float]:
    """(fx, fy) of the model's predicted K over the camera's K on the same grid (1.0: the model guessed right)."""
    p, c = np.asarray(predicted_k, dtype=np.float64), np.asarray(camera_k, dtype=np.float64)
    if p.shape != (3, 3) or c.shape != (3, 3) or not (c[0, 0] > 0 and c[1, 1] > 0):
        raise ConversionError(f"focal_ratio: expected two 3x3 K with fx, fy > 0, got {p.tolist()} and {c.tolist()}")
    return float(p[0, 0] / c[0, 0]), float(p[1, 1] / c[1, 1])


def focal_ratio_diagnostics(predicted_k: np.ndarray, camera_k: np.ndarray) -> dict[str, str]:
    """Key-values for /diagnostics: the predicted-to-real focal-length ratios."""
    fx, fy = focal_ratio(predicted_k, camera_k)
    return {"predicted_fx_over_camera_fx": f"{fx:.4f}", "predicted_fy_over_camera_fy": f"{fy:.4f}"}
