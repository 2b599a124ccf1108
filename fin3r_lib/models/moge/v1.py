"""MoGe-1 (`Ruicheng/moge-vitl`): DINOv2 features -> an affine-invariant point map and a validity mask.

The image is resized (bicubic, antialiased) to about `num_tokens` patches of 14 px, normalized with
ImageNet statistics and resized again (bilinear, antialiased) to whole patches; the sum of 1x1
projections of four blocks' tokens is upsampled three times (transposed conv + residual blocks, the
view-plane UV concatenated before each stage), bilinearly resized to the first resized image, and two
output convs give the points (3) and the mask logit (1), both resized back to the input size.
The mask is a raw score compared with `mask_threshold` (no sigmoid in MoGe-1).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fin3r_lib.errors import InputError
from fin3r_lib.models.moge.backbone import PATCH, DinoViT, patch_grid_features
from fin3r_lib.models.moge.conv import ResidualConvBlock, conv3x3, upsampler
from fin3r_lib.models.moge.geometry import uv_channels
from fin3r_lib.models.moge.remap import check_remap, remap_points

log = logging.getLogger(__name__)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Head(nn.Module):
    """MoGe-1's decoder (`head.*`): projections, three upsampling stages, one output block per output."""

    def __init__(
        self,
        num_features: int,
        dim_in: int,
        dim_proj: int,
        dim_upsample: Sequence[int],
        dim_times_res_block_hidden: int,
        num_res_blocks: int,
        res_block_norm: str,
        last_res_blocks: int,
        last_conv_channels: int,
        last_conv_size: int,
    ) -> None:
        super().__init__()
        self.projects = nn.ModuleList([nn.Conv2d(dim_in, dim_proj, 1) for _ in range(num_features)])

        def res_blocks(width: int, count: int) -> list[nn.Module]:
            hidden = dim_times_res_block_hidden * width
            return [ResidualConvBlock(width, width, hidden, "layer_norm", res_block_norm) for _ in range(count)]

        widths = [dim_proj, *dim_upsample]
        self.upsample_blocks = nn.ModuleList(
            [
                nn.Sequential(upsampler("conv_transpose", a + 2, b), *res_blocks(b, num_res_blocks))
                for a, b in itertools.pairwise(widths)
            ]
        )
        self.output_block = nn.ModuleList(
            [
                nn.Sequential(
                    conv3x3(widths[-1] + 2, last_conv_channels),
                    *res_blocks(last_conv_channels, last_res_blocks),
                    nn.ReLU(),
                    nn.Conv2d(
                        last_conv_channels, out, last_conv_size, padding=last_conv_size // 2, padding_mode="replicate"
                    ),
                )
                for out in (3, 1)
            ]
        )

    def forward(self, features: list[tuple[torch.Tensor, torch.Tensor]], size: tuple[int, int]) -> list[torch.Tensor]:
        """Backbone features and the resized image's (H, W) -> [points [N, 3, H, W], mask [N, 1, H, W]]."""
        h, w = size
        gh, gw = h // PATCH, w // PATCH
        x = torch.stack(
            [
                proj(patch_grid_features(tokens, gh, gw))
                for proj, (tokens, _) in zip(self.projects, features, strict=True)
            ],
            dim=1,
        ).sum(dim=1)
        for block in self.upsample_blocks:
            x = block(torch.cat([x, uv_channels(x.shape[0], x.shape[-2], x.shape[-1], w / h, x)], dim=1))
        x = F.interpolate(x, (h, w), mode="bilinear", align_corners=False)
        x = torch.cat([x, uv_channels(x.shape[0], h, w, w / h, x)], dim=1)
        return [block(x) for block in self.output_block]


class MoGeV1(nn.Module):
    """MoGe-1 built from the release's `model_config` (keys `backbone.*`, `head.*`, `image_mean/std`)."""

    version = "v1"

    def __init__(
        self,
        encoder: str = "dinov2_vitb14",
        intermediate_layers: int | Sequence[int] = 4,
        dim_proj: int = 512,
        dim_upsample: Sequence[int] = (256, 128, 128),
        dim_times_res_block_hidden: int = 1,
        num_res_blocks: int = 1,
        remap_output: str = "linear",
        res_block_norm: str = "group_norm",
        num_tokens_range: Sequence[int] = (1200, 2500),
        last_res_blocks: int = 0,
        last_conv_channels: int = 32,
        last_conv_size: int = 1,
        mask_threshold: float = 0.5,
        **legacy: Any,
    ) -> None:
        super().__init__()
        if "trained_area_range" in legacy:  # older releases give the range in pixels
            area = legacy.pop("trained_area_range")
            num_tokens_range = (area[0] // PATCH**2, area[1] // PATCH**2)
        if legacy:  # as the reference does: ignored, with a warning
            log.warning("MoGe-1 model config: ignoring unknown entries %s", sorted(legacy))
        self.intermediate_layers = (
            intermediate_layers if isinstance(intermediate_layers, int) else list(intermediate_layers)
        )
        self.remap_output = check_remap(remap_output)
        self.num_tokens_range = tuple(num_tokens_range)
        self.mask_threshold = float(mask_threshold)
        self.backbone = DinoViT(encoder)
        count = intermediate_layers if isinstance(intermediate_layers, int) else len(intermediate_layers)
        self.head = Head(
            count,
            self.backbone.embed_dim,
            dim_proj,
            list(dim_upsample),
            dim_times_res_block_hidden,
            num_res_blocks,
            res_block_norm,
            last_res_blocks,
            last_conv_channels,
            last_conv_size,
        )
        self.register_buffer("image_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("image_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor, num_tokens: int) -> dict[str, torch.Tensor]:
        """RGB [N, 3, H, W] in [0, 1] -> points [N, H, W, 3] (affine-invariant), mask score [N, H, W]."""
        h0, w0 = image.shape[-2:]
        factor = (num_tokens * PATCH**2 / (h0 * w0)) ** 0.5
        h, w = int(h0 * factor), int(w0 * factor)
        if h < PATCH or w < PATCH:
            raise InputError(f"MoGe-1: {num_tokens} tokens give a {h}x{w} image, smaller than one {PATCH} px patch")
        image = F.interpolate(image, (h, w), mode="bicubic", align_corners=False, antialias=True)
        image = (image - self.image_mean) / self.image_std
        image_14 = F.interpolate(
            image, (h // PATCH * PATCH, w // PATCH * PATCH), mode="bilinear", align_corners=False, antialias=True
        )
        features = self.backbone.intermediate(image_14, self.intermediate_layers)
        points, mask = self.head(features, (h, w))
        # resized and remapped in fp32 (the reference's fp32 autocast region)
        points = F.interpolate(points.float(), (h0, w0), mode="bilinear", align_corners=False)
        mask = F.interpolate(mask.float(), (h0, w0), mode="bilinear", align_corners=False)
        points = remap_points(points.permute(0, 2, 3, 1), self.remap_output)
        return {"points": points, "mask": mask.squeeze(1)}
