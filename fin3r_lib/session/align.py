"""Placing a prediction into the session world: robust Sim(3) fits and applying them to frames."""

from __future__ import annotations

import numpy as np

from fin3r_lib.errors import Fin3rError
from fin3r_lib.geometry import sim3_matrix, transform_points, umeyama_sim3
from fin3r_lib.models.reconstruction import FrameResult

#: fewest point pairs a Sim(3) is fitted on
MIN_CORRESPONDENCES = 16


class AlignmentError(Fin3rError):
    """A prediction could not be placed in the session world (too few valid points, non-finite output)."""


def fit_sim3_robust(src: np.ndarray, dst: np.ndarray, weights: np.ndarray, trim: float = 0.2) -> np.ndarray:
    """4x4 similarity mapping `src` onto `dst` ((N, 3) each), weighted, refitted without the worst `trim` residuals.

    Pairs with a non-finite point or a non-positive weight are ignored; raises AlignmentError when fewer
    than MIN_CORRESPONDENCES remain or the fit is degenerate.
    """
    ok = np.isfinite(src).all(1) & np.isfinite(dst).all(1) & np.isfinite(weights) & (weights > 0)
    if ok.sum() < MIN_CORRESPONDENCES:
        raise AlignmentError(
            f"expected at least {MIN_CORRESPONDENCES} valid point pairs to align the prediction, got {int(ok.sum())}"
        )
    src, dst, weights = src[ok], dst[ok], weights[ok]
    s, r, t = umeyama_sim3(src, dst, weights)
    if trim > 0:
        residual = np.linalg.norm(s * src @ r.T + t - dst, axis=1)
        keep = residual <= np.quantile(residual, 1.0 - trim)
        if keep.sum() >= MIN_CORRESPONDENCES:
            s, r, t = umeyama_sim3(src[keep], dst[keep], weights[keep])
    m = sim3_matrix(s, r, t)
    if not (np.isfinite(m).all() and s > 0):
        raise AlignmentError(f"expected a finite similarity with positive scale, got scale {s!r}")
    return m


def transform_frame(frame: FrameResult, sim3: np.ndarray) -> FrameResult:
    """`frame` moved by the similarity `sim3` (4x4, x -> s R x + t): depth scaled, pose kept rigid."""
    scale = float(np.cbrt(np.linalg.det(sim3[:3, :3])))
    pose = sim3 @ frame.cam_to_world
    pose[:3, :3] /= scale
    return FrameResult(
        depth=(frame.depth * scale).astype(np.float32),
        depth_conf=frame.depth_conf,
        world_points=transform_points(frame.world_points, sim3).astype(np.float32),
        world_points_conf=frame.world_points_conf,
        cam_to_world=pose,
        intrinsics=np.asarray(frame.intrinsics, dtype=np.float64),
        relative_scale=frame.relative_scale,
    )


def check_finite_pose(frame: FrameResult) -> None:
    """Raise AlignmentError when the model returned a non-finite pose."""
    if not np.isfinite(frame.cam_to_world).all():
        raise AlignmentError("expected a finite camera pose from the model, got NaN or inf")


def check_intrinsics(frame: FrameResult) -> None:
    """Raise AlignmentError unless the model's intrinsics are finite with positive focal lengths."""
    k = np.asarray(frame.intrinsics, dtype=np.float64)
    if not (np.isfinite(k).all() and k[0, 0] > 0 and k[1, 1] > 0):
        raise AlignmentError(
            "expected finite intrinsics with positive focal lengths from the model, got "
            f"fx={float(k[0, 0])} fy={float(k[1, 1])} cx={float(k[0, 2])} cy={float(k[1, 2])}"
        )
