"""Small geometry helpers shared by models, the session and evaluation (numpy, float64 inside)."""

from __future__ import annotations

import cv2
import numpy as np


def resize_nearest(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`values` (H, W[, C]) at `size` (h, w), nearest by pixel centres (depth, confidence, masks: no blending).

    Output pixel x takes input pixel floor((x + 0.5) * W / w), likewise rows (cv2.INTER_NEAREST_EXACT): the
    grids share their outer edges, as scaling K by the size ratio assumes. (cv2.INTER_NEAREST takes
    floor(x * W / w), half an output pixel off that.)
    """
    if values.shape[:2] == tuple(size):
        return values
    return cv2.resize(values, (size[1], size[0]), interpolation=cv2.INTER_NEAREST_EXACT)


def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (u, v), each (H, W) float64, centres at integer coordinates."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    return u, v


def unproject_pixels(
    u: np.ndarray, v: np.ndarray, depth: np.ndarray, intrinsics: np.ndarray, cam_to_world: np.ndarray | None = None
) -> np.ndarray:
    """Points (..., 3) float64 of pixels (u, v) with z-depths `depth`; in world coordinates when a pose is given.

    NaN depth gives NaN points.
    """
    k = np.asarray(intrinsics, dtype=np.float64)
    z = depth.astype(np.float64)
    pts = np.stack([(u - k[0, 2]) / k[0, 0] * z, (v - k[1, 2]) / k[1, 1] * z, z], axis=-1)
    return pts if cam_to_world is None else transform_points(pts, cam_to_world)


def unproject_depth(depth: np.ndarray, intrinsics: np.ndarray, cam_to_world: np.ndarray | None = None) -> np.ndarray:
    """Points (H, W, 3) float64 of a z-depth map (H, W); in world coordinates when a pose is given.

    NaN depth gives NaN points.
    """
    u, v = pixel_grid(*depth.shape)
    return unproject_pixels(u, v, depth, intrinsics, cam_to_world)


def rigid_inverse(pose: np.ndarray) -> np.ndarray:
    """Inverse of a 4x4 rigid transform (exact transpose of the rotation)."""
    inv = np.eye(4)
    inv[:3, :3] = pose[:3, :3].T
    inv[:3, 3] = -pose[:3, :3].T @ pose[:3, 3]
    return inv


def transform_points(points: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Apply a 4x4 (or scaled Sim(3) as 4x4) transform to (..., 3) points."""
    t = np.asarray(transform, dtype=np.float64)
    return points @ t[:3, :3].T + t[:3, 3]


def umeyama_sim3(
    src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity (s, R, t) with dst ~ s R src + t (Umeyama 1991), (N, 3) inputs."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    mu_s = w @ src
    mu_d = w @ dst
    xs = src - mu_s
    xd = dst - mu_d
    cov = (xd * w[:, None]).T @ xs
    u, d, vt = np.linalg.svd(cov)
    e = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[2, 2] = -1
    r = u @ e @ vt
    var_s = (w * (xs**2).sum(1)).sum()
    s = float(np.trace(np.diag(d) @ e) / var_s) if var_s > 0 else 1.0
    t = mu_d - s * r @ mu_s
    return s, r, t


def sim3_matrix(scale: float, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """4x4 matrix of x -> scale * R x + t."""
    m = np.eye(4)
    m[:3, :3] = scale * np.asarray(rotation, dtype=np.float64)
    m[:3, 3] = translation
    return m
