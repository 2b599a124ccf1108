"""MoGe-2 (`Ruicheng/moge-2-vitl-normal`, -vitl, -vitb-normal, -vits-normal): metric point maps.

The image is resized (bilinear, antialiased) to a grid of about `num_tokens` patches with the input's
aspect ratio, then normalized; the 1x1 projections of the chosen blocks' tokens are summed, and with
the view-plane UV at five scales (1x to 16x the patch grid) go through a shared neck (`ConvStack`);
the point, normal and mask heads each take the neck's levels and their last level is resized back
to the input size. The scale head maps the last block's class token to log metric scale. The mask
is a sigmoid probability (valid above 0.5).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fin3r_lib.errors import InputError
from fin3r_lib.models.moge.backbone import PATCH, DinoViT, patch_grid_features
from fin3r_lib.models.moge.conv import MLP, ConvStack
from fin3r_lib.models.moge.geometry import uv_channels
from fin3r_lib.models.moge.remap import check_remap, remap_points
from fin3r_lib.models.moge.v1 import IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger(__name__)
LEVELS = 5
HEADS = ("points_head", "normal_head", "mask_head")


class Encoder(nn.Module):
    """MoGe-2's `encoder.*`: the DINOv2 backbone plus one 1x1 projection per read-out block."""

    def __init__(self, backbone: str, intermediate_layers: int | Sequence[int], dim_out: int, **legacy: Any) -> None:
        super().__init__()
        if legacy:
            log.warning("MoGe-2 encoder config: ignoring unknown entries %s", sorted(legacy))
        self.layers = intermediate_layers if isinstance(intermediate_layers, int) else list(intermediate_layers)
        self.backbone = DinoViT(backbone)
        count = intermediate_layers if isinstance(intermediate_layers, int) else len(intermediate_layers)
        self.output_projections = nn.ModuleList([nn.Conv2d(self.backbone.embed_dim, dim_out, 1) for _ in range(count)])
        self.register_buffer("image_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("image_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor, rows: int, cols: int) -> tuple[torch.Tensor, torch.Tensor]:
        """RGB in [0, 1] -> (summed projected features [N, dim_out, rows, cols], last class token [N, C])."""
        x = F.interpolate(image, (rows * PATCH, cols * PATCH), mode="bilinear", align_corners=False, antialias=True)
        x = (x - self.image_mean) / self.image_std
        features = self.backbone.intermediate(x, self.layers)
        summed = torch.stack(
            [
                proj(patch_grid_features(t, rows, cols))
                for proj, (t, _) in zip(self.output_projections, features, strict=True)
            ],
            dim=1,
        ).sum(dim=1)
        return summed, features[-1][1]


class MoGeV2(nn.Module):
    """MoGe-2 built from the release's `model_config`."""

    version = "v2"
    mask_threshold = 0.5

    def __init__(
        self,
        encoder: dict[str, Any],
        neck: dict[str, Any],
        points_head: dict[str, Any] | None = None,
        mask_head: dict[str, Any] | None = None,
        normal_head: dict[str, Any] | None = None,
        scale_head: dict[str, Any] | None = None,
        remap_output: str = "linear",
        num_tokens_range: Sequence[int] = (1200, 3600),
        **legacy: Any,
    ) -> None:
        super().__init__()
        if legacy:  # as the reference does: ignored, with a warning
            log.warning("MoGe-2 model config: ignoring unknown entries %s", sorted(legacy))
        self.remap_output = check_remap(remap_output)
        self.num_tokens_range = tuple(num_tokens_range)
        self.encoder = Encoder(**encoder)
        self.neck = ConvStack(**neck)
        for name, cfg in (("points_head", points_head), ("mask_head", mask_head), ("normal_head", normal_head)):
            if cfg is not None:
                self.add_module(name, ConvStack(**cfg))
        if scale_head is not None:
            self.scale_head = MLP(**scale_head)

    def forward(self, image: torch.Tensor, num_tokens: int) -> dict[str, torch.Tensor]:
        """RGB [N, 3, H, W] in [0, 1] -> points [N, H, W, 3], mask probability [N, H, W], and when the
        model has them normal [N, H, W, 3] (unit) and metric_scale [N]."""
        n, _, h, w = image.shape
        aspect = w / h
        rows, cols = round((num_tokens / aspect) ** 0.5), round((num_tokens * aspect) ** 0.5)
        if rows < 1 or cols < 1:
            raise InputError(f"MoGe-2: {num_tokens} tokens give a {rows}x{cols} patch grid for a {h}x{w} image")
        features, cls_token = self.encoder(image, rows, cols)
        levels = [torch.cat([features, uv_channels(n, rows, cols, aspect, features)], dim=1)]
        levels += [uv_channels(n, rows * 2**i, cols * 2**i, aspect, features) for i in range(1, LEVELS)]
        levels = self.neck(levels)
        out: dict[str, torch.Tensor] = {}
        for name in HEADS:
            if hasattr(self, name):
                raw = getattr(self, name)(levels)[-1]
                out[name.removesuffix("_head")] = F.interpolate(raw, (h, w), mode="bilinear", align_corners=False)
        if "points" in out:
            out["points"] = remap_points(out["points"].permute(0, 2, 3, 1), self.remap_output)
        if "normal" in out:
            out["normal"] = F.normalize(out["normal"].permute(0, 2, 3, 1), dim=-1)
        if "mask" in out:
            out["mask"] = out["mask"].squeeze(1).sigmoid()
        if hasattr(self, "scale_head"):
            out["metric_scale"] = self.scale_head(cls_token).squeeze(1).exp()
        return out
