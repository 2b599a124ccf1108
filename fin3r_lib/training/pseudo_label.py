"""Teacher output -> Fin3R pseudo-label: z-shift removed (affine-invariant teachers), then DUSt3R-normalized.

A label is a z-depth map on the frame's pixel grid divided by the mean distance of the valid points
to the camera centre, with the teacher's validity mask kept. Metric teachers (a depth sensor,
MoGe-2) need no shift; an affine-invariant point map (MoGe-1) is known up to a scale and a shift
along z, and the shift is recovered the way MoGe's own inference does: the one that makes the
points project like a pinhole camera (with the frame's intrinsics when known, else with an unknown
focal length and the principal point at the image centre), solved here in closed form by linear
least squares.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fin3r_lib.errors import InputError
from fin3r_lib.geometry import pixel_grid, unproject_depth
from fin3r_lib.training.teachers.base import TeacherOutput

#: name and version of the conversion, written into label-cache manifests
CONVERSION = "zshift-dust3r-norm-v1"


@dataclass
class PseudoLabel:
    """A normalized z-depth label (H, W) float32, 0 where invalid; `mask` the valid pixels;
    `scale` the normalization factor and `shift` the z-shift that was added (0 for metric teachers)."""

    depth: np.ndarray
    mask: np.ndarray
    scale: float
    shift: float = 0.0


def recover_shift(points: np.ndarray, mask: np.ndarray, intrinsics: np.ndarray | None = None) -> float:
    """The z-shift t making affine-invariant points (H, W, 3) project like a pinhole camera.

    With intrinsics: minimizes sum_p ||(x, y) - r_xy(p) (z + t)||^2 over valid p, r = K^-1 (u, v, 1),
    i.e. t = sum r_xy . ((x, y) - r_xy z) / sum ||r_xy||^2. Without: the focal f is unknown too and
    the principal point is the image centre c; minimizes sum ||f (x, y) - (p - c)(z + t)||^2 over
    (f, t) (a 2x2 linear system).
    """
    h, w = mask.shape
    u, v = pixel_grid(h, w)
    p = points[mask].astype(np.float64)
    if p.shape[0] < 2:
        raise InputError(f"z-shift recovery: expected at least 2 valid points, got {p.shape[0]}")
    xy, z = p[:, :2], p[:, 2]
    if intrinsics is not None:
        k = np.asarray(intrinsics, np.float64)
        r = np.stack([(u[mask] - k[0, 2]) / k[0, 0], (v[mask] - k[1, 2]) / k[1, 1]], axis=-1)
        den = float((r * r).sum())
        if den <= 0:
            raise InputError("z-shift recovery: every valid pixel lies on the principal point")
        return float((r * (xy - r * z[:, None])).sum() / den)
    c = np.stack([u[mask] - (w - 1) / 2, v[mask] - (h - 1) / 2], axis=-1)
    # unknowns (f, t): f * xy - c * t = c * z, stacked over both coordinates
    a = np.stack([xy.reshape(-1), -c.reshape(-1)], axis=-1)
    b = (c * z[:, None]).reshape(-1)
    (_, shift), *_ = np.linalg.lstsq(a, b, rcond=None)
    return float(shift)


def ray_norms(shape: tuple[int, int], intrinsics: np.ndarray | None) -> np.ndarray:
    """||K^-1 (u, v, 1)|| per pixel (H, W) float32: distance / z-depth; ones without intrinsics."""
    if intrinsics is None:
        return np.ones(shape, np.float32)
    u, v = pixel_grid(*shape)
    k = np.asarray(intrinsics, np.float64)
    return np.sqrt(((u - k[0, 2]) / k[0, 0]) ** 2 + ((v - k[1, 2]) / k[1, 1]) ** 2 + 1.0).astype(np.float32)


def pseudo_label(output: TeacherOutput, intrinsics: np.ndarray | None = None) -> PseudoLabel:
    """The Fin3R pseudo-label of one teacher output (see the module docstring).

    `intrinsics` (3x3, the frame's) is used when the output carries none. An affine-invariant output
    must carry `points`. Pixels with a non-finite or non-positive depth (after the shift) are invalid.
    """
    k = output.intrinsics if output.intrinsics is not None else intrinsics
    mask = np.asarray(output.mask, bool) & np.isfinite(output.depth)
    shift = 0.0
    points: np.ndarray | None = None
    if output.metric:
        if output.points is not None:
            points = output.points.astype(np.float64)
        elif k is not None:
            points = unproject_depth(np.where(mask, output.depth, 0.0), k)
        depth = np.where(mask, output.depth, 0.0).astype(np.float64)
    else:
        if output.points is None:
            raise InputError(
                "pseudo-label: an affine-invariant teacher output needs its point map (points), got depth only"
            )
        points = output.points.astype(np.float64).copy()
        mask &= np.isfinite(points).all(axis=-1)
        shift = recover_shift(np.where(mask[..., None], points, 0.0), mask, k)
        points[..., 2] += shift
        depth = np.where(mask, points[..., 2], 0.0)
    mask &= depth > 0
    if not mask.any():
        raise InputError("pseudo-label: the teacher output has no valid pixel")
    dist = depth if points is None else np.linalg.norm(np.where(mask[..., None], points, 0.0), axis=-1)
    scale = float(dist[mask].mean())
    return PseudoLabel(np.where(mask, depth / scale, 0.0).astype(np.float32), mask, scale, shift)
