"""Point-map metrics equal brute-force nearest neighbours; normal consistency on planes of known angle."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from fin3r_lib.errors import InputError
from fin3r_lib.evaluation.pointmap import pointmap_metrics


def test_accuracy_and_completeness_equal_brute_force_on_random_clouds():
    rng = np.random.default_rng(0)
    pred, gt = rng.normal(size=(300, 3)), rng.normal(size=(420, 3)) * 1.2
    pairwise = np.linalg.norm(pred[:, None] - gt[None], axis=-1)
    acc, comp = pairwise.min(axis=1), pairwise.min(axis=0)
    got = pointmap_metrics(pred, gt, normals=False)
    assert got["acc"] == pytest.approx(acc.mean(), rel=1e-12)
    assert got["acc_med"] == pytest.approx(np.median(acc), rel=1e-12)
    assert got["comp"] == pytest.approx(comp.mean(), rel=1e-12)
    assert got["comp_med"] == pytest.approx(np.median(comp), rel=1e-12)
    assert (got["pred_points"], got["gt_points"]) == (300, 420)


def test_normal_consistency_of_planes_at_60_degrees_is_one_half():
    u, v = np.meshgrid(np.linspace(-1, 1, 30), np.linspace(-1, 1, 30))
    plane = np.stack([u.ravel(), v.ravel(), np.zeros(u.size)], axis=1)
    tilted = plane @ Rotation.from_euler("x", 60, degrees=True).as_matrix().T
    got = pointmap_metrics(plane, tilted)
    for key in ("nc_acc", "nc_comp", "nc", "nc_acc_med"):
        assert got[key] == pytest.approx(0.5, abs=1e-6)
    assert pointmap_metrics(plane, plane)["nc"] == pytest.approx(1.0, abs=1e-9)


def test_bad_clouds_are_refused():
    with pytest.raises(InputError, match=r"\(N, 3\)"):
        pointmap_metrics(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(InputError, match="non-empty"):
        pointmap_metrics(np.zeros((0, 3)), np.zeros((4, 3)))
    with pytest.raises(InputError, match="ground truth: expected finite points, got 1 non-finite of 4"):
        pointmap_metrics(np.zeros((4, 3)), np.array([[0, 0, 0], [1, 0, 0], [0, np.inf, 0], [0, 0, 1.0]]))


def _pca_normals(points: np.ndarray, k: int) -> np.ndarray:
    """Normals by brute force: eigenvector of the smallest eigenvalue of each point's k-neighbour covariance."""
    dist = np.linalg.norm(points[:, None] - points[None], axis=-1)
    neighbours = points[np.argsort(dist, axis=1)[:, :k]]
    centred = neighbours - neighbours.mean(axis=1, keepdims=True)
    _, vectors = np.linalg.eigh(np.einsum("nki,nkj->nij", centred, centred))
    return vectors[:, :, 0]


def test_normal_consistency_equals_an_independent_pca_and_brute_force_computation():
    rng = np.random.default_rng(2)
    uv = rng.uniform(-1, 1, size=(2, 400, 2))
    pred = np.concatenate([uv[0], 0.3 * (uv[0] ** 2).sum(1, keepdims=True)], axis=1)  # paraboloid
    gt = np.concatenate([uv[1], 0.2 * np.sin(2 * uv[1][:, :1]) + 0.1 * uv[1][:, 1:]], axis=1)  # wavy sheet
    n_pred, n_gt = _pca_normals(pred, 20), _pca_normals(gt, 20)
    pairwise = np.linalg.norm(pred[:, None] - gt[None], axis=-1)
    nc_acc = np.abs(np.sum(n_pred * n_gt[pairwise.argmin(1)], axis=1))
    nc_comp = np.abs(np.sum(n_gt * n_pred[pairwise.argmin(0)], axis=1))
    got = pointmap_metrics(pred, gt, normal_neighbours=20)
    assert got["nc_acc"] == pytest.approx(nc_acc.mean(), abs=1e-5)
    assert got["nc_comp_med"] == pytest.approx(np.median(nc_comp), abs=1e-5)
    assert got["nc"] == pytest.approx((nc_acc.mean() + nc_comp.mean()) / 2, abs=1e-5)
    assert 0.5 < got["nc"] < 0.99  # the surfaces differ, so the check is not the trivial 1
