"""A pinhole prior for randomly initialised CroCo-family point heads (CUT3R, DUSt3R, MASt3R).

These models predict no intrinsics: the focal length is fitted to the self-view points (Weiszfeld,
`fin3r_lib.models.cut3r.focal`). Random head weights give points whose x/z is uncorrelated with the
pixel position (the encoder has no absolute position, RoPE is relative), so the fitted focal length
is a tiny number of either sign, depending on the seed and the image; the session rejects
non-positive ones, and a random model reconstructs nothing. No bias on the heads' parameters can
help (their outputs carry no pixel position), so `bias_random_point_heads` adds a forward hook to
each point head that replaces its points p by

    p' = (u - W // 2, v - H // 2, f0) / f0 + PRIOR_WEIGHT * p,      f0 = max(H, W),

a camera at unit depth with a 53 degree field of view along the long side, perturbed by the random
prediction, so the fitted focal length is about f0 and positive and the outputs still depend on the
weights (an adapter still changes them). Only `load_model` with random weights calls it; released
checkpoints never get the hook.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: weight of the random prediction in the biased points (random points are 1..100 units long)
PRIOR_WEIGHT = 1e-3
#: head modules of the CroCo family and the point outputs each one returns
_POINT_HEADS: dict[str, tuple[str, ...]] = {
    "downstream_head": ("pts3d_in_self_view", "pts3d_in_other_view"),  # CUT3R
    "downstream_head1": ("pts3d",),  # DUSt3R / MASt3R, view 1
    "downstream_head2": ("pts3d",),  # DUSt3R / MASt3R, view 2 (in view 1's frame)
}


def pinhole_points(h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Points [H, W, 3] of a camera with focal max(H, W) and principal point (W // 2, H // 2) at depth 1."""
    f0 = float(max(h, w))
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=dtype, device=device), torch.arange(w, dtype=dtype, device=device), indexing="ij"
    )
    return torch.stack([(xs - w // 2) / f0, (ys - h // 2) / f0, torch.ones_like(xs)], dim=-1)


def _make_hook(keys: tuple[str, ...]):
    def hook(_module: nn.Module, _inputs: Any, output: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = dict(output)
        for key in (k for k in keys if k in out):  # heads not asked for in this call are absent
            pts = out[key]
            out[key] = pinhole_points(pts.shape[-3], pts.shape[-2], pts.dtype, pts.device) + PRIOR_WEIGHT * pts
        return out

    return hook


def bias_random_point_heads(model: nn.Module) -> int:
    """Hook the pinhole prior onto every CroCo-family point head of `model`; returns how many were hooked."""
    hooked = 0
    for name, keys in _POINT_HEADS.items():
        head = getattr(model, name, None)
        if isinstance(head, nn.Module):
            head.register_forward_hook(_make_hook(keys))
            hooked += 1
    return hooked


def bias_random_camera_head(model: nn.Module) -> None:
    """Give a randomly initialised VGGT camera head a positive field of view (other models: nothing).

    Random VGGT weights give fov = relu(x) = 0, an infinite focal length, for about half the frames; the
    session rejects those frames (non-finite intrinsics), so a random model would reconstruct nothing.
    Shifting the field-of-view outputs' bias by +0.5 keeps random models usable for tests and demos.
    """
    camera_head = getattr(model, "camera_head", None)
    if camera_head is not None:
        with torch.no_grad():
            camera_head.pose_branch.fc2.bias[7:] += 0.5
