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
