"""Depth errors under an alignment: per frame (monocular protocol) and per sequence (video depth)."""

from __future__ import annotations

import numpy as np

from fin3r_lib.errors import InputError
from fin3r_lib.evaluation.alignment import DepthAlignment, fit_depth_alignment
from fin3r_lib.evaluation.crops import check_crop, crop_mask
from fin3r_lib.evaluation.metrics import depth_errors, valid_mask


def aligned_depth(
    pred: np.ndarray, gt: np.ndarray, alignment: str = "median", max_depth: float | None = None, crop: str = "none"
) -> tuple[np.ndarray, np.ndarray, DepthAlignment]:
    """The prediction aligned to `gt` (fitted on the valid pixels), the valid-pixel mask and the fit.

    Valid pixels: inside the evaluation `crop` (see `crops`), finite ground truth in (0, max_depth] and a
    finite prediction.
    """
    mask = valid_mask(gt, pred, max_depth)
    if check_crop(crop) != "none":
        mask &= crop_mask(crop, gt.shape)
    fit = fit_depth_alignment(pred, gt, mask, alignment)
    return fit.apply(pred), mask, fit


def frame_depth_errors(
    pred: np.ndarray, gt: np.ndarray, alignment: str = "median", max_depth: float | None = None, crop: str = "none"
) -> dict[str, float]:
    """AbsRel / RMSE / delta1 of one depth map after fitting `alignment` on its own valid pixels.

    Valid pixels as in `aligned_depth`. The fitted scale and shift are returned with the errors.
    """
    aligned, mask, fit = aligned_depth(pred, gt, alignment, max_depth, crop)
    return {**depth_errors(aligned, gt, mask), "scale": fit.scale, "shift": fit.shift}


def video_depth_errors(
    preds: np.ndarray, gts: np.ndarray, alignment: str = "scale", max_depth: float | None = None, crop: str = "none"
) -> dict[str, float]:
    """Errors of a depth video (S, H, W) under ONE alignment fitted on all its frames' valid pixels (Bonn/KITTI)."""
    if preds.ndim != 3:
        raise InputError(f"expected a depth video of shape (S, H, W), got {preds.shape}")
    return frame_depth_errors(preds, gts, alignment, max_depth, crop)
