"""Depth metrics and alignments against hand-computed examples; alignments recover known transforms exactly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from fin3r_lib.errors import InputError
from fin3r_lib.evaluation.alignment import fit_depth_alignment, icp_refine, sim3_align
from fin3r_lib.evaluation.depth import frame_depth_errors, video_depth_errors
from fin3r_lib.evaluation.metrics import abs_rel, delta_accuracy, depth_errors, rmse, valid_mask
from fin3r_lib.geometry import sim3_matrix, transform_points


def test_metrics_equal_hand_computed_values():
    gt = np.array([1.0, 2.0, 4.0, 0.0, np.nan])
    pred = np.array([1.5, 2.0, 2.0, 3.0, 1.0])
    mask = valid_mask(gt, pred)
    assert mask.tolist() == [True, True, True, False, False]
    # |0.5|/1, 0/2, |2|/4 -> mean 1/3; squared errors 0.25, 0, 4; ratios 1.5, 1, 2 -> one below 1.25
    assert abs_rel(pred, gt) == pytest.approx(1 / 3)
    assert rmse(pred, gt) == pytest.approx(np.sqrt(4.25 / 3))
    assert delta_accuracy(pred, gt) == pytest.approx(1 / 3)
    assert delta_accuracy(pred, gt, threshold=1.6) == pytest.approx(2 / 3)
    assert depth_errors(pred, gt)["pixels"] == 3


def test_non_positive_prediction_fails_delta_and_max_depth_caps_pixels():
    gt = np.array([1.0, 2.0, 10.0])
    pred = np.array([0.0, 2.0, 10.0])
    assert delta_accuracy(pred, gt) == pytest.approx(2 / 3)
    capped = valid_mask(gt, pred, max_depth=5.0)
    assert capped.tolist() == [True, True, False]
    assert abs_rel(pred, gt, capped) == pytest.approx(0.5)


def test_empty_mask_gives_nan_and_bad_shapes_are_refused():
    gt = np.full(4, np.nan)
    assert np.isnan(abs_rel(np.ones(4), gt))
    with pytest.raises(InputError, match="shape"):
        abs_rel(np.ones(3), np.ones(4))
    with pytest.raises(InputError, match="alignment among"):
        fit_depth_alignment(np.ones(4), np.ones(4), np.ones(4, bool), "affine")


@pytest.fixture
def gt_depth() -> np.ndarray:
    return np.random.default_rng(0).uniform(0.5, 4.0, size=(12, 16))


@pytest.mark.parametrize(
    ("method", "make_pred", "scale", "shift"),
    [
        ("median", lambda g: g / 3.0, 3.0, 0.0),
        ("scale", lambda g: g * 0.4, 2.5, 0.0),
        ("scale_shift", lambda g: (g - 0.3) / 2.0, 2.0, 0.3),
        ("disparity_affine", lambda g: 1.0 / ((1.0 / g - 0.1) / 3.0), 3.0, 0.1),
    ],
)
def test_depth_alignment_recovers_a_known_transform_exactly(gt_depth, method, make_pred, scale, shift):
    pred = make_pred(gt_depth)
    fit = fit_depth_alignment(pred, gt_depth, valid_mask(gt_depth), method)
    assert fit.scale == pytest.approx(scale, rel=1e-9) and fit.shift == pytest.approx(shift, abs=1e-9)
    np.testing.assert_allclose(fit.apply(pred), gt_depth, rtol=1e-9)
    errors = frame_depth_errors(pred, gt_depth, method)
    assert errors["abs_rel"] == pytest.approx(0.0, abs=1e-9) and errors["delta1"] == 1.0


def test_median_alignment_on_a_hand_example():
    gt = np.array([1.0, 2.0, 4.0])
    pred = np.array([2.0, 2.0, 3.0])  # medians 2 and 2 -> scale 1; pred/gt = 2, 1, 0.75
    errors = frame_depth_errors(pred, gt, "median")
    assert errors["scale"] == 1.0
    assert errors["abs_rel"] == pytest.approx((1.0 + 0.0 + 0.25) / 3)
    assert errors["delta1"] == pytest.approx(1 / 3)


def test_video_depth_fits_one_scale_for_the_whole_sequence(gt_depth):
    gts = np.stack([gt_depth, gt_depth * 2])
    preds = np.stack([gt_depth, gt_depth])  # one scale cannot fit both: per-frame scales would be 1 and 2
    errors = video_depth_errors(preds, gts, "median")
    per_frame = frame_depth_errors(preds[1], gts[1], "median")
    assert per_frame["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    s = np.median(gts) / np.median(preds)
    expected = np.mean(np.abs(s * preds - gts) / gts)
    assert errors["scale"] == pytest.approx(s) and errors["abs_rel"] == pytest.approx(expected)
    with pytest.raises(InputError, match=r"\(S, H, W\)"):
        video_depth_errors(gt_depth, gt_depth)


def _random_sim3(seed: int) -> np.ndarray:
    rot = Rotation.random(random_state=seed).as_matrix()
    return sim3_matrix(1.7, rot, np.array([0.3, -1.2, 2.0]))


def test_sim3_alignment_recovers_a_known_similarity():
    src = np.random.default_rng(1).normal(size=(200, 3))
    truth = _random_sim3(2)
    dst = transform_points(src, truth)
    src_with_nan = np.vstack([src, [[np.nan, 0, 0]]])
    dst_with_nan = np.vstack([dst, [[0.0, 0, 0]]])
    np.testing.assert_allclose(sim3_align(src_with_nan, dst_with_nan), truth, atol=1e-10)


def test_icp_refines_a_perturbed_similarity_to_the_truth():
    rng = np.random.default_rng(3)
    src = rng.uniform(-1, 1, size=(2000, 3)) * np.array([1.0, 0.6, 0.3])
    truth = _random_sim3(4)
    dst = transform_points(src, truth)
    noise = sim3_matrix(1.02, Rotation.from_rotvec([0.02, -0.01, 0.015]).as_matrix(), np.array([0.02, 0, -0.01]))
    refined = icp_refine(src, dst, truth @ noise, max_distance=0.3, iterations=100)
    np.testing.assert_allclose(transform_points(src, refined), dst, atol=1e-4)
