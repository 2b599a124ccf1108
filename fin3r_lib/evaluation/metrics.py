"""Depth metrics: small pure functions on arrays, each documented with its formula.

Conventions: `pred` and `gt` are z-depths of the same shape; `mask` selects the pixels that count
(see `valid_mask`). Every function returns a Python float (NaN when no pixel counts).

- AbsRel = mean(|d - d*| / d*)
- RMSE = sqrt(mean((d - d*)^2))
- delta_t = mean(max(d / d*, d* / d) < t), t = 1.25 for delta1 (a non-positive prediction fails)
"""

from __future__ import annotations

import numpy as np

from fin3r_lib.errors import InputError

DELTA1 = 1.25


def _check_pair(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    if pred.shape != gt.shape:
        raise InputError(f"expected a prediction of the ground truth's shape {gt.shape}, got {pred.shape}")
    if mask is None:
        return valid_mask(gt, pred)
    if mask.shape != gt.shape or mask.dtype != bool:
        raise InputError(f"expected a boolean mask of shape {gt.shape}, got {mask.dtype} {mask.shape}")
    return mask


def valid_mask(
    gt: np.ndarray, pred: np.ndarray | None = None, max_depth: float | None = None, min_depth: float = 0.0
) -> np.ndarray:
    """Pixels with finite ground truth in (min_depth, max_depth] (and a finite prediction when given)."""
    with np.errstate(invalid="ignore"):
        mask = np.isfinite(gt) & (gt > min_depth)
        if max_depth is not None:
            mask &= gt <= max_depth
    if pred is not None:
        mask &= np.isfinite(pred)
    return mask


def abs_rel(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute relative error, mean(|d - d*| / d*)."""
    m = _check_pair(pred, gt, mask)
    if not m.any():
        return float("nan")
    p, g = pred[m].astype(np.float64), gt[m].astype(np.float64)
    return float(np.mean(np.abs(p - g) / g))


def rmse(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Root mean squared error, sqrt(mean((d - d*)^2)), in the ground truth's unit."""
    m = _check_pair(pred, gt, mask)
    if not m.any():
        return float("nan")
    p, g = pred[m].astype(np.float64), gt[m].astype(np.float64)
    return float(np.sqrt(np.mean((p - g) ** 2)))


def delta_accuracy(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, threshold: float = DELTA1
) -> float:
    """Fraction of pixels with max(d / d*, d* / d) < threshold; a non-positive prediction counts as a failure."""
    m = _check_pair(pred, gt, mask)
    if not m.any():
        return float("nan")
    p, g = pred[m].astype(np.float64), gt[m].astype(np.float64)
    ok = p > 0
    ratio = np.full(p.shape, np.inf)
    ratio[ok] = np.maximum(p[ok] / g[ok], g[ok] / p[ok])
    return float(np.mean(ratio < threshold))


def depth_errors(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """AbsRel, RMSE, delta1 and the number of pixels counted, as one dict."""
    m = _check_pair(pred, gt, mask)
    return {
        "abs_rel": abs_rel(pred, gt, m),
        "rmse": rmse(pred, gt, m),
        "delta1": delta_accuracy(pred, gt, m),
        "pixels": int(m.sum()),
    }
