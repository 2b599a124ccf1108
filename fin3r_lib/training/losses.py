"""The Fin3R losses: DUSt3R-style scale normalization and the confidence-weighted regression terms.

Shapes: N images (or N multi-view samples of S views), H x W pixels. Every loss is the mean over the
valid pixels of one image (sample), then the mean over the images (samples) that have any valid pixel.
Images without a valid pixel contribute nothing; a batch without any gives a zero loss that still
depends on the prediction, so a backward pass is always possible.

`lam` (the paper's lambda) is not published. Default 0.2: the log-confidence weight of the
confidence losses of DUSt3R, CUT3R (`ConfLoss(alpha=0.2)`) and VGGT (depth `... - 0.2 * log c`) that
Fin3R's students were trained with, so the frozen heads' confidence keeps the range it had.
"""

from __future__ import annotations

import torch

#: default log-confidence weight lambda (see the module docstring)
DEFAULT_LAMBDA = 0.2
#: lower bound on a normalization scale (an all-zero prediction is not divided by zero)
SCALE_EPS = 1e-8


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-item mean of `values` [N, ...] over `mask` [N, ...] (True = valid) -> [N]; 0 where nothing is valid."""
    m = mask.to(values.dtype)
    dims = tuple(range(1, values.dim()))
    return (values * m).sum(dims) / m.sum(dims).clamp(min=1)


def _mean_over_valid_items(per_item: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `per_item` [N] over the items with any valid pixel in `mask` [N, ...]."""
    has_valid = mask.flatten(1).any(dim=1)
    if not bool(has_valid.any()):
        return per_item.sum() * 0.0
    return per_item[has_valid].mean()


def point_scale(points: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """DUSt3R's normalization factor: the mean distance of the valid points to the origin.

    s_n = sum_{p valid} ||P_n(p)|| / #valid, for points [N, ..., 3] and mask [N, ...] -> [N]
    (all views of a multi-view sample share one factor). Clamped to >= SCALE_EPS.
    """
    dist = torch.linalg.vector_norm(points, dim=-1)
    return _masked_mean(torch.where(mask, dist, torch.zeros_like(dist)), mask).clamp(min=SCALE_EPS)


def normalize_points(points: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """P / s_n (see `point_scale`) for points [N, ..., 3] and mask [N, ...] -> (normalized points, s [N])."""
    scale = point_scale(points, mask)
    return points / scale.view(-1, *([1] * (points.dim() - 1))), scale


def depth_scale(depth: torch.Tensor, mask: torch.Tensor, ray_norm: torch.Tensor | None = None) -> torch.Tensor:
    """DUSt3R's factor for a z-depth map: the mean distance of the unprojected valid points to the origin.

    A pixel with ray r = K^-1 (u, v, 1) and depth z lies at distance z * ||r|| from the camera, so
    s_n = sum_{p valid} z_n(p) * ||r(p)|| / #valid for depth [N, H, W], mask [N, H, W] and `ray_norm`
    ||r|| ([N, H, W] or broadcastable; None: 1, i.e. the mean valid depth) -> [N], >= SCALE_EPS.
    """
    dist = depth.abs() if ray_norm is None else depth.abs() * ray_norm
    return _masked_mean(torch.where(mask, dist, torch.zeros_like(dist)), mask).clamp(min=SCALE_EPS)


def normalize_depth(
    depth: torch.Tensor, mask: torch.Tensor, ray_norm: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """z / s_n (see `depth_scale`) -> (normalized depth [N, H, W], s [N])."""
    scale = depth_scale(depth, mask, ray_norm)
    return depth / scale.view(-1, 1, 1), scale


def confidence_weighted(sq_error: torch.Tensor, conf: torch.Tensor, mask: torch.Tensor, lam: float) -> torch.Tensor:
    """Aleatoric regression loss: mean_n mean_{p valid} [ c_n(p) * e_n(p) - lam * log c_n(p) ].

    `sq_error` e [N, ...] (already squared), `conf` c > 0 and `mask` of the same shape.
    """
    log_conf = torch.log(torch.where(mask, conf, torch.ones_like(conf)))
    per_pixel = conf * sq_error - lam * log_conf
    per_pixel = torch.where(mask, per_pixel, torch.zeros_like(per_pixel))
    return _mean_over_valid_items(_masked_mean(per_pixel, mask), mask)


def distillation_loss(
    depth: torch.Tensor,
    conf: torch.Tensor,
    label: torch.Tensor,
    mask: torch.Tensor,
    lam: float = DEFAULT_LAMBDA,
    ray_norm: torch.Tensor | None = None,
) -> torch.Tensor:
    """Fin3R's distillation term on single images: L_d = beta * ||D - D^||^2 - lambda * log(beta).

    D = depth / s(depth) and D^ = label / s(label) are the student's depth and the pseudo-label, each
    DUSt3R-normalized over the label's valid pixels (`normalize_depth`); beta = `conf`, the student's
    own depth confidence. Inputs [N, H, W]; `mask` True where the label is valid.
    """
    pred_n, _ = normalize_depth(depth, mask, ray_norm)
    label_n, _ = normalize_depth(torch.where(mask, label, torch.zeros_like(label)), mask, ray_norm)
    return confidence_weighted((pred_n - label_n) ** 2, conf, mask, lam)


def replay_loss(
    points: torch.Tensor,
    conf: torch.Tensor,
    gt_points: torch.Tensor,
    mask: torch.Tensor,
    lam: float = DEFAULT_LAMBDA,
) -> torch.Tensor:
    """Fin3R's replay term on multi-view samples: L_p = beta * ||P - P^gt||^2 - lambda * log(beta).

    P and P^gt are point maps [N, S, H, W, 3] of N samples of S views in the first view's camera
    frame, each divided by its own sample-wide mean distance of valid points (`normalize_points`);
    ||.||^2 sums the squared x, y, z errors; beta = `conf` [N, S, H, W]; `mask` [N, S, H, W] marks
    pixels with ground truth.
    """
    pred_n, _ = normalize_points(points, mask)
    gt_n, _ = normalize_points(torch.where(mask[..., None], gt_points, torch.zeros_like(gt_points)), mask)
    sq = ((pred_n - gt_n) ** 2).sum(dim=-1)
    return confidence_weighted(sq, conf, mask, lam)


def gradient_loss(
    depth: torch.Tensor, label: torch.Tensor, mask: torch.Tensor, ray_norm: torch.Tensor | None = None
) -> torch.Tensor:
    """Optional edge term on normalized depth: mean_{pairs valid} |d_x(D - D^)| + |d_y(D - D^)|.

    With R = D - D^ (both normalized as in `distillation_loss`), d_x R(p) = R(u+1, v) - R(u, v) over
    horizontal neighbour pairs whose two pixels are valid, d_y likewise; the per-image mean is over
    all valid pairs of both directions.
    """
    pred_n, _ = normalize_depth(depth, mask, ray_norm)
    label_n, _ = normalize_depth(torch.where(mask, label, torch.zeros_like(label)), mask, ray_norm)
    res = torch.where(mask, pred_n - label_n, torch.zeros_like(pred_n))
    gx = (res[..., :, 1:] - res[..., :, :-1]).abs()
    gy = (res[..., 1:, :] - res[..., :-1, :]).abs()
    mx = mask[..., :, 1:] & mask[..., :, :-1]
    my = mask[..., 1:, :] & mask[..., :-1, :]
    total = (gx * mx).flatten(1).sum(1) + (gy * my).flatten(1).sum(1)
    count = (mx.flatten(1).sum(1) + my.flatten(1).sum(1)).clamp(min=1)
    return _mean_over_valid_items(total / count, mask)
