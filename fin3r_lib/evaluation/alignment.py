"""Alignments of a prediction to ground truth before its errors are measured.

Depth (MoGe-style protocols of the monocular-depth literature), fitted on the valid pixels only:
- `none`: metric, d' = d;
- `median`: d' = s d, s = median(d*) / median(d);
- `scale`: least-squares scale, d' = s d, s = sum(d d*) / sum(d^2);
- `scale_shift`: least squares in depth, d' = s d + t;
- `disparity_affine`: least squares in disparity, 1/d' = s (1/d) + t, the aligned disparity clamped
  below at 1 / max(d*) so d' stays positive and finite.
Point maps: a Sim(3) by Umeyama's method on corresponding points (`sim3_align`), optionally refined by
point-to-point ICP with scale (`icp_refine`, open3d).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fin3r_lib.errors import InputError
from fin3r_lib.geometry import sim3_matrix, umeyama_sim3

ALIGNMENTS = ("none", "median", "scale", "scale_shift", "disparity_affine")


@dataclass(frozen=True)
class DepthAlignment:
    """A fitted depth alignment: `apply(d)` maps a prediction into the ground truth's frame."""

    method: str
    scale: float = 1.0
    shift: float = 0.0
    min_disparity: float = 0.0  # lower clamp of the aligned disparity (disparity_affine only)

    def apply(self, depth: np.ndarray) -> np.ndarray:
        """The aligned depth (float64), same shape as `depth`."""
        d = depth.astype(np.float64)
        if self.method != "disparity_affine":
            return self.scale * d + self.shift
        with np.errstate(divide="ignore", invalid="ignore"):
            disparity = np.maximum(self.scale / d + self.shift, self.min_disparity)
            return 1.0 / disparity


def _lstsq_affine(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(s, t) minimising sum((s x + t - y)^2)."""
    a = np.stack([x, np.ones_like(x)], axis=1)
    (s, t), *_ = np.linalg.lstsq(a, y, rcond=None)
    return float(s), float(t)


def fit_depth_alignment(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, method: str) -> DepthAlignment:
    """Fit `method` (one of ALIGNMENTS) on the pixels of `mask`, where the prediction must be positive."""
    if method not in ALIGNMENTS:
        raise InputError(f"expected a depth alignment among {ALIGNMENTS}, got {method!r}")
    if method == "none":
        return DepthAlignment(method)
    with np.errstate(invalid="ignore"):
        m = mask & np.isfinite(pred) & (pred > 0)
    if m.sum() < 2:
        raise InputError(f"expected at least 2 valid pixels to fit a {method} alignment, got {int(m.sum())}")
    p, g = pred[m].astype(np.float64), gt[m].astype(np.float64)
    if method == "median":
        return DepthAlignment(method, float(np.median(g) / np.median(p)))
    if method == "scale":
        return DepthAlignment(method, float(p @ g / (p @ p)))
    if method == "scale_shift":
        return DepthAlignment(method, *_lstsq_affine(p, g))
    s, t = _lstsq_affine(1.0 / p, 1.0 / g)
    return DepthAlignment(method, s, t, float(1.0 / g.max()))


def sim3_align(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """4x4 similarity x -> s R x + t minimising sum ||s R src + t - dst||^2 over the finite pairs ((N, 3) each)."""
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3:
        raise InputError(f"expected two (N, 3) arrays of corresponding points, got {src.shape} and {dst.shape}")
    ok = np.isfinite(src).all(1) & np.isfinite(dst).all(1)
    if ok.sum() < 3:
        raise InputError(f"expected at least 3 finite point pairs for a Sim(3) alignment, got {int(ok.sum())}")
    return sim3_matrix(*umeyama_sim3(src[ok], dst[ok]))


def icp_refine(
    src: np.ndarray, dst: np.ndarray, init: np.ndarray, max_distance: float, iterations: int = 30
) -> np.ndarray:
    """Refine the similarity `init` (4x4) mapping cloud `src` onto `dst` by point-to-point ICP with scale (open3d)."""
    import open3d as o3d

    reg = o3d.pipelines.registration
    clouds = []
    for pts in (src, dst):
        cloud = o3d.geometry.PointCloud()
        cloud.points = o3d.utility.Vector3dVector(np.asarray(pts, dtype=np.float64))
        clouds.append(cloud)
    result = reg.registration_icp(
        clouds[0],
        clouds[1],
        max_distance,
        np.asarray(init, dtype=np.float64),
        reg.TransformationEstimationPointToPoint(with_scaling=True),
        reg.ICPConvergenceCriteria(max_iteration=iterations),
    )
    return np.asarray(result.transformation)
