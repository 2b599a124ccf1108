"""MoGe's inference (its `infer`): forward in fp16 autocast when asked, then in fp32 the mask, the focal
length and z-shift recovered from the point map (or the shift alone for a known horizontal field of
view), depth, points re-projected through the recovered camera, the metric scale applied (MoGe-2)
and invalid pixels set to +inf."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fin3r_lib.errors import InputError
from fin3r_lib.models.moge.geometry import (
    depth_to_points,
    focal_from_fov_x,
    normalized_intrinsics,
    recover_focal_shift,
)


@dataclass
class MoGeResult:
    """Per image: points [N, H, W, 3] and depth [N, H, W] (camera frame, +inf where invalid; metric for
    MoGe-2, up to scale for MoGe-1), mask [N, H, W] bool, normalized intrinsics [N, 3, 3],
    metric_scale [N] or None, normal [N, H, W, 3] or None."""

    points: torch.Tensor
    depth: torch.Tensor
    mask: torch.Tensor
    intrinsics: torch.Tensor
    metric_scale: torch.Tensor | None = None
    normal: torch.Tensor | None = None


def tokens_for_level(model: nn.Module, level: int) -> int:
    """MoGe's resolution level 0-9 -> token count within the model's trained range."""
    if not 0 <= level <= 9:
        raise InputError(f"MoGe resolution level: expected 0-9, got {level}")
    low, high = model.num_tokens_range
    return int(low + (level / 9) * (high - low))


@torch.inference_mode()
def infer(
    model: nn.Module,
    image: torch.Tensor,
    num_tokens: int,
    use_fp16: bool = False,
    fov_x: float | None = None,
) -> MoGeResult:
    """Run a MoGe-1/-2 model (ours) on RGB [N, 3, H, W] in [0, 1]; see the module docstring."""
    param = next(model.parameters())
    image = image.to(dtype=param.dtype, device=param.device)
    n, _, h, w = image.shape
    aspect = w / h
    fp16 = use_fp16 and param.dtype != torch.float16
    with torch.autocast(device_type=param.device.type, dtype=torch.float16, enabled=fp16):
        out = model(image, num_tokens)
    out = {k: v.float() for k, v in out.items()}
    points, mask = out["points"], out["mask"] > model.mask_threshold
    if fov_x is None:
        focal, shift = recover_focal_shift(points, mask)
    else:
        focal = focal_from_fov_x(torch.full((n,), float(fov_x), device=points.device), aspect)
        _, shift = recover_focal_shift(points, mask, focal)
    intrinsics = normalized_intrinsics(focal, aspect)
    depth = points[..., 2] + shift[:, None, None]
    if model.version == "v2":
        mask &= depth > 0
    points = depth_to_points(depth, intrinsics)
    scale = out.get("metric_scale")
    if scale is not None:
        points, depth = points * scale[:, None, None, None], depth * scale[:, None, None]
    points = torch.where(mask[..., None], points, torch.inf)
    depth = torch.where(mask, depth, torch.inf)
    normal = out.get("normal")
    if normal is not None:
        normal = torch.where(mask[..., None], normal, torch.zeros_like(normal))
    return MoGeResult(points, depth, mask, intrinsics, scale, normal)
