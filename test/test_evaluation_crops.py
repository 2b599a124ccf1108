"""Evaluation crops (KITTI Garg / Eigen, NYUv2 Eigen) against boundaries computed by hand, and their
effect on the depth errors and on the alignment fit."""

from __future__ import annotations

import numpy as np
import pytest

from fin3r_lib.errors import InputError
from fin3r_lib.evaluation import SystemEvaluator
from fin3r_lib.evaluation.crops import crop_bounds, crop_mask
from fin3r_lib.evaluation.depth import frame_depth_errors, video_depth_errors

# (crop, H, W) -> (top, bottom, left, right), bottom/right exclusive, worked out by hand from the
# published fractions and int() truncation, e.g. 0.40810811 * 375 = 153.04 -> 153, 0.99189189 * 375 =
# 371.96 -> 371, 0.03594771 * 1242 = 44.65 -> 44, 0.96405229 * 1242 = 1197.35 -> 1197. At H = 370 the
# fractions land just below whole numbers (0.99189189 * 370 = 366.9999993, 0.3324324 * 370 = 122.99999),
# so truncation drops a row there, as in the published code.
HAND_COMPUTED = {
    ("garg", 375, 1242): (153, 371, 44, 1197),
    ("eigen", 375, 1242): (124, 342, 44, 1197),
    ("garg", 370, 1226): (151, 366, 44, 1181),
    ("eigen", 370, 1226): (122, 337, 44, 1181),
    ("garg", 376, 1241): (153, 372, 44, 1196),
    ("eigen", 376, 1241): (124, 343, 44, 1196),
    ("nyu", 480, 640): (45, 471, 41, 601),
    # scaled for a frame downscaled to 84x112: 45 * 84 / 480 = 7.875 -> 8, 471 * 84 / 480 = 82.425 -> 82,
    # 41 * 112 / 640 = 7.175 -> 7, 601 * 112 / 640 = 105.175 -> 105
    ("nyu", 84, 112): (8, 82, 7, 105),
    ("none", 375, 1242): (0, 375, 0, 1242),
}


@pytest.mark.parametrize("key", HAND_COMPUTED, ids=lambda k: f"{k[0]}-{k[1]}x{k[2]}")
def test_crop_bounds_and_mask_equal_hand_computed_boundaries(key):
    name, h, w = key
    top, bottom, left, right = HAND_COMPUTED[key]
    assert crop_bounds(name, h, w) == (top, bottom, left, right)
    mask = crop_mask(name, (h, w))
    assert mask.shape == (h, w) and mask.dtype == bool
    assert mask.sum() == (bottom - top) * (right - left)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    assert (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) == (top, bottom, left, right)
    assert mask[top:bottom, left:right].all()


def test_crop_mask_broadcasts_over_a_video_and_refuses_bad_input():
    video = crop_mask("garg", (3, 375, 1242))
    assert video.shape == (3, 375, 1242) and all(np.array_equal(v, crop_mask("garg", (375, 1242))) for v in video)
    with pytest.raises(InputError, match="evaluation crop among"):
        crop_mask("kitti", (375, 1242))
    with pytest.raises(InputError, match="depth map shape"):
        crop_mask("garg", (1242,))
    with pytest.raises(InputError, match="evaluation crop among"):
        SystemEvaluator(normals=False, crop="garg_crop")


def _kitti_like() -> np.ndarray:
    v, u = np.mgrid[0:375, 0:1242]
    return (2.0 + 0.1 * v + 0.01 * u).astype(np.float32)


def test_only_pixels_inside_the_crop_count():
    gt = _kitti_like()
    pred = 2 * gt  # wrong (relative error 1) everywhere ...
    pred[153:371, 44:1197] = gt[153:371, 44:1197]  # ... but inside the Garg crop of 375x1242
    garg = frame_depth_errors(pred, gt, "none", crop="garg")
    assert (garg["abs_rel"], garg["rmse"], garg["delta1"], garg["pixels"]) == (0.0, 0.0, 1.0, 218 * 1153)
    # the Eigen crop, rows 124-341, holds 29 rows above the Garg crop where the error is 1
    eigen = frame_depth_errors(pred, gt, "none", crop="eigen")
    assert eigen["pixels"] == 218 * 1153
    assert eigen["abs_rel"] == pytest.approx(29 / 218) and eigen["delta1"] == pytest.approx(189 / 218)
    full = frame_depth_errors(pred, gt, "none")
    assert full["pixels"] == 375 * 1242
    assert full["abs_rel"] == pytest.approx(1 - 218 * 1153 / (375 * 1242))


def test_alignment_is_fitted_inside_the_crop_and_the_depth_cap_still_applies():
    gt = _kitti_like()
    pred = gt.copy()
    pred[153:371, 44:1197] *= 3  # a scale of 3 inside the crop only
    fit = frame_depth_errors(pred, gt, "median", crop="garg")
    assert fit["scale"] == pytest.approx(1 / 3) and fit["abs_rel"] == pytest.approx(0.0, abs=1e-7)
    # a cap at 30.005 m (no pixel on it): inside the crop, the pixels with 2 + 0.1 v + 0.01 u below it count
    capped = frame_depth_errors(pred, gt, "median", max_depth=30.005, crop="garg")
    v, u = np.mgrid[153:371, 44:1197]
    assert capped["pixels"] == int(np.sum(2.0 + 0.1 * v + 0.01 * u <= 30.005))
    assert 0 < capped["pixels"] < 218 * 1153
    video = video_depth_errors(np.stack([pred, pred]), np.stack([gt, gt]), "median", crop="garg")
    assert video["scale"] == pytest.approx(1 / 3) and video["pixels"] == 2 * 218 * 1153
