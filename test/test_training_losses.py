"""The Fin3R losses and the pseudo-label conversion against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fin3r_lib.errors import InputError
from fin3r_lib.training.losses import (
    confidence_weighted,
    depth_scale,
    distillation_loss,
    gradient_loss,
    point_scale,
    replay_loss,
)
from fin3r_lib.training.pseudo_label import pseudo_label, ray_norms, recover_shift
from fin3r_lib.training.teachers.base import TeacherOutput


def t(x) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


def test_point_scale_is_mean_distance_of_valid_points() -> None:
    pts = t([[[3.0, 4.0, 0.0], [0.0, 0.0, 2.0], [10.0, 10.0, 10.0]]])  # [1, 3, 3]
    mask = torch.tensor([[True, True, False]])
    assert point_scale(pts, mask).item() == pytest.approx((5.0 + 2.0) / 2)


def test_depth_scale_uses_ray_lengths() -> None:
    depth = t([[[1.0, 1.0]]])
    mask = torch.ones(1, 1, 2, dtype=torch.bool)
    assert depth_scale(depth, mask).item() == pytest.approx(1.0)
    assert depth_scale(depth, mask, t([[[1.0, 3.0]]])).item() == pytest.approx(2.0)


def test_distillation_loss_hand_computed() -> None:
    # image 0: pred [1, 3] -> /2 -> [0.5, 1.5]; label [5, 5] -> /5 -> [1, 1]; sq 0.25 each; conf 2
    # image 1: pred [2, 4] -> /3 -> [2/3, 4/3]; label [1, 2] -> /1.5 -> same: sq 0; conf [1, e]
    # image 2: no valid pixel, not counted
    depth = t([[[1.0, 3.0]], [[2.0, 4.0]], [[7.0, 7.0]]])
    label = t([[[5.0, 5.0]], [[1.0, 2.0]], [[0.0, 0.0]]])
    conf = t([[[2.0, 2.0]], [[1.0, math.e]], [[3.0, 3.0]]])
    mask = torch.tensor([[[True, True]], [[True, True]], [[False, False]]])
    lam = 0.2
    img0 = 2.0 * 0.25 - lam * math.log(2.0)
    img1 = (0.0 - lam * 0.0 + 0.0 - lam * 1.0) / 2
    got = distillation_loss(depth, conf, label, mask, lam=lam)
    assert got.item() == pytest.approx((img0 + img1) / 2, rel=1e-12)


def test_distillation_loss_ignores_invalid_label_pixels() -> None:
    depth = t([[[1.0, 3.0, 100.0]]]).requires_grad_()
    label = t([[[5.0, 5.0, float("nan")]]])
    conf = t([[[1.0, 1.0, 50.0]]])
    mask = torch.tensor([[[True, True, False]]])
    loss = distillation_loss(depth, conf, label, mask, lam=0.0)
    assert loss.item() == pytest.approx(0.25)  # pred [0.5, 1.5] vs label [1, 1]
    loss.backward()
    assert depth.grad[0, 0, 2].item() == 0.0
    assert torch.isfinite(depth.grad).all()


def test_scale_of_the_prediction_does_not_matter() -> None:
    depth = t([[[1.0, 2.0], [3.0, 5.0]]])
    label = t([[[2.0, 1.0], [1.0, 4.0]]])
    conf = t([[[1.5, 2.0], [1.0, 3.0]]])
    mask = torch.tensor([[[True, True], [False, True]]])
    a = distillation_loss(depth, conf, label, mask)
    b = distillation_loss(depth * 7.5, conf, label * 0.1, mask)
    assert a.item() == pytest.approx(b.item(), rel=1e-12)


def test_replay_loss_hand_computed() -> None:
    # one sample, two views of one pixel: pred z [1, 3] -> /2; gt z [2, 2] -> /2; sq 0.25 each
    pts = t([[[[[0.0, 0.0, 1.0]]], [[[0.0, 0.0, 3.0]]]]])  # [1, 2, 1, 1, 3]
    gt = t([[[[[0.0, 0.0, 2.0]]], [[[0.0, 0.0, 2.0]]]]])
    conf = t([[[[1.0]], [[4.0]]]])
    mask = torch.ones(1, 2, 1, 1, dtype=torch.bool)
    lam = 0.5
    expected = ((1.0 * 0.25 - lam * 0.0) + (4.0 * 0.25 - lam * math.log(4.0))) / 2
    assert replay_loss(pts, conf, gt, mask, lam=lam).item() == pytest.approx(expected, rel=1e-12)


def test_replay_loss_sums_squared_xyz_errors() -> None:
    pts = t([[[[[1.0, 0.0, 0.0]]]]])  # distance 1 -> unchanged
    gt = t([[[[[0.0, 1.0, 0.0]]]]])
    mask = torch.ones(1, 1, 1, 1, dtype=torch.bool)
    assert replay_loss(pts, torch.ones(1, 1, 1, 1, dtype=torch.float64), gt, mask).item() == pytest.approx(2.0)


def test_gradient_loss_hand_computed() -> None:
    # pred [1, 2, 3] -> /2 -> [0.5, 1, 1.5]; label ones; residual [-0.5, 0, 0.5]; |dx| = 0.5, 0.5
    depth = t([[[1.0, 2.0, 3.0]]])
    label = t([[[4.0, 4.0, 4.0]]])
    mask = torch.ones(1, 1, 3, dtype=torch.bool)
    assert gradient_loss(depth, label, mask).item() == pytest.approx(0.5)
    mask[0, 0, 1] = False  # no valid neighbour pair left
    assert gradient_loss(depth, label, mask).item() == 0.0


def test_no_valid_pixel_gives_zero_with_a_graph() -> None:
    depth = t([[[1.0, 2.0]]]).requires_grad_()
    mask = torch.zeros(1, 1, 2, dtype=torch.bool)
    loss = distillation_loss(depth, torch.ones_like(depth), depth.detach(), mask)
    assert loss.item() == 0.0
    loss.backward()
    assert (depth.grad == 0).all()


def test_confidence_term_is_minimized_at_lambda_over_error() -> None:
    err = t([[0.5]])
    mask = torch.ones(1, 1, dtype=torch.bool)
    lam = 0.2
    values = {c: confidence_weighted(err, t([[c]]), mask, lam).item() for c in (0.2, 0.4, 0.8)}
    assert values[0.4] < values[0.2] and values[0.4] < values[0.8]  # optimum c = lam / err = 0.4


# ---- pseudo-labels ---------------------------------------------------------------------------------

K = np.array([[50.0, 0.0, 15.5], [0.0, 55.0, 11.5], [0.0, 0.0, 1.0]])


def scene_depth(h: int = 24, w: int = 32) -> np.ndarray:
    v, u = np.mgrid[0:h, 0:w]
    return (2.0 + 0.05 * u + 0.3 * np.sin(v / 3.0)).astype(np.float64)


def points_by_hand(depth: np.ndarray, k: np.ndarray) -> np.ndarray:
    h, w = depth.shape
    out = np.zeros((h, w, 3))
    for y in range(h):
        for x in range(w):
            z = depth[y, x]
            out[y, x] = ((x - k[0, 2]) * z / k[0, 0], (y - k[1, 2]) * z / k[1, 1], z)
    return out


def test_metric_label_is_depth_over_mean_point_distance() -> None:
    depth = scene_depth()
    holes = np.zeros_like(depth, bool)
    holes[3:6, 4:9] = True
    raw = np.where(holes, np.nan, depth).astype(np.float32)
    label = pseudo_label(TeacherOutput(depth=raw, mask=~holes, metric=True), K)
    pts = points_by_hand(depth, K)
    scale = np.linalg.norm(pts[~holes], axis=-1).mean()
    np.testing.assert_array_equal(label.mask, ~holes)
    np.testing.assert_allclose(label.depth[~holes], depth[~holes] / scale, rtol=1e-5)
    assert (label.depth[holes] == 0).all() and label.shift == 0.0
    assert label.scale == pytest.approx(scale, rel=1e-5)


@pytest.mark.parametrize("known_k", [True, False])
def test_affine_label_removes_the_z_shift(known_k: bool) -> None:
    k = K.copy()
    if not known_k:  # the solver then assumes the principal point at the image centre
        k[0, 2], k[1, 2], k[1, 1] = 15.5, 11.5, 50.0
    depth = scene_depth()
    truth = points_by_hand(depth, k)
    affine = truth * 0.37
    affine[..., 2] += 1.9
    mask = np.ones(depth.shape, bool)
    mask[0, 0] = False
    out = TeacherOutput(depth=affine[..., 2].astype(np.float32), mask=mask, metric=False, points=affine)
    label = pseudo_label(out, k if known_k else None)
    assert label.shift == pytest.approx(-1.9, abs=1e-9)
    scale = np.linalg.norm(truth[mask], axis=-1).mean()
    np.testing.assert_allclose(label.depth[mask], depth[mask] / scale, rtol=1e-5)


def test_affine_output_without_points_is_refused() -> None:
    out = TeacherOutput(depth=np.ones((4, 4), np.float32), mask=np.ones((4, 4), bool), metric=False)
    with pytest.raises(InputError, match="point map"):
        pseudo_label(out)


def test_label_without_valid_pixel_is_refused() -> None:
    out = TeacherOutput(depth=np.zeros((4, 4), np.float32), mask=np.ones((4, 4), bool), metric=True)
    with pytest.raises(InputError, match="no valid pixel"):
        pseudo_label(out, K)


def test_shift_recovery_needs_points() -> None:
    with pytest.raises(InputError, match="at least 2"):
        recover_shift(np.zeros((2, 2, 3)), np.zeros((2, 2), bool), K)


def test_ray_norms() -> None:
    r = ray_norms((24, 32), K)
    assert r[11, 15] == pytest.approx(math.sqrt(0.5**2 / 50**2 + 0.5**2 / 55**2 + 1), rel=1e-6)
    assert r[0, 0] == pytest.approx(math.sqrt((15.5 / 50) ** 2 + (11.5 / 55) ** 2 + 1), rel=1e-6)
