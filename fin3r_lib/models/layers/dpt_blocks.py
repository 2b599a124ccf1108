"""Generic DPT (Dense Prediction Transformer) building blocks shared by the VGGT and CUT3R heads.

Module and parameter names follow the released checkpoints (`scratch.layer{i}_rn`,
`refinenet{i}.resConfUnit{1,2}.conv{1,2}`, `refinenet{i}.out_conv`). The details in which the two
releases differ are constructor flags:

- `relu_quirk` (VGGT): the reference uses an in-place ReLU, so a residual unit adds `relu(x)`
  instead of `x`: conv2(relu(conv1(relu(x)))) + relu(x). CUT3R uses the plain form (+ x).
- `align_corners` of the bilinear upsampling in the fusion block (True in both releases).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: above this many output elements `F.interpolate` overflows int32 indexing; split the batch instead
_INTERPOLATE_MAX_ELEMENTS = 1_610_612_736


def interpolate(
    x: torch.Tensor,
    size: tuple[int, int] | None = None,
    scale_factor: float | None = None,
    mode: str = "bilinear",
    align_corners: bool | None = True,
) -> torch.Tensor:
    """`F.interpolate` of [N, C, H, W] that splits very large batches (int32 index limit) into chunks."""
    if size is None:
        if scale_factor is None:
            raise ValueError("interpolate: expected size or scale_factor, got neither")
        size = (int(x.shape[-2] * scale_factor), int(x.shape[-1] * scale_factor))
    elements = size[0] * size[1] * x.shape[0] * x.shape[1]
    if elements <= _INTERPOLATE_MAX_ELEMENTS:
        return F.interpolate(x, size=size, mode=mode, align_corners=align_corners)
    chunks = x.chunk(elements // _INTERPOLATE_MAX_ELEMENTS + 1, dim=0)
    return torch.cat([F.interpolate(c, size=size, mode=mode, align_corners=align_corners) for c in chunks])


def token_maps(tokens: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
    """Patch tokens [N, gh*gw, C] (row-major) -> feature maps [N, C, gh, gw], as a channels-last view.

    The strides are those of a channels-last tensor at any N (the references' rearrange gives them for
    CroCo), so oneDNN runs every convolution of a DPT head channels-last. A transpose + reshape gives the
    same values with a batch stride of C when N is 1: no memory format matches and the head runs NCHW.
    """
    return tokens.reshape(tokens.shape[0], grid_h, grid_w, tokens.shape[-1]).permute(0, 3, 1, 2)


class ResidualConvUnit(nn.Module):
    """Two 3x3 convs with pre-activation ReLU and a skip; see the module docstring for `relu_quirk`."""

    def __init__(self, features: int, relu_quirk: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, kernel_size=3, padding=1, bias=True)
        self.conv2 = nn.Conv2d(features, features, kernel_size=3, padding=1, bias=True)
        self.relu_quirk = relu_quirk

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = F.relu(x)
        out = self.conv2(F.relu(self.conv1(act)))
        return out + (act if self.relu_quirk else x)


class FeatureFusionBlock(nn.Module):
    """DPT refine-net: [skip + resConfUnit1(lateral)] -> resConfUnit2 -> bilinear resize -> 1x1 out_conv.

    `has_residual=False` (the deepest refine-net of VGGT) has no `resConfUnit1` and takes one input.
    Without a target `size` the output is upsampled by 2.
    """

    def __init__(
        self, features: int, has_residual: bool = True, relu_quirk: bool = False, align_corners: bool = True
    ) -> None:
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, kernel_size=1, bias=True)
        self.has_residual = has_residual
        if has_residual:
            self.resConfUnit1 = ResidualConvUnit(features, relu_quirk)
        self.resConfUnit2 = ResidualConvUnit(features, relu_quirk)
        self.align_corners = align_corners

    def forward(
        self, x: torch.Tensor, lateral: torch.Tensor | None = None, size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        if lateral is not None:
            if not self.has_residual:
                raise ValueError("FeatureFusionBlock: built with has_residual=False, got a lateral input")
            x = x + self.resConfUnit1(lateral)
        x = self.resConfUnit2(x)
        if size is None:
            x = interpolate(x, scale_factor=2, mode="bilinear", align_corners=self.align_corners)
        else:
            x = interpolate(x, size=tuple(size), mode="bilinear", align_corners=self.align_corners)
        return self.out_conv(x)


class DPTFusion(nn.Module):
    """The DPT `scratch`: per-level 3x3 convs (`layer{i}_rn`) and refine-nets fusing coarse to fine.

    Exposes its parts under the release names so that a head can register it as `scratch`. Takes
    the reassembled feature maps, finest first; returns the fused map at twice the finest resolution.
    The deepest refine-net takes no lateral input; `deepest_has_residual=False` (VGGT) leaves out its
    unused `resConfUnit1`, True (CroCo/CUT3R) keeps it so the release's keys exist.
    `resize_to_next=True` (VGGT): each refine-net resizes straight to the next finer level's size;
    False (CroCo/CUT3R): it upsamples by 2 and the result is cropped to the next level's size.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        features: int,
        relu_quirk: bool = False,
        deepest_has_residual: bool = True,
        align_corners: bool = True,
        resize_to_next: bool = True,
    ) -> None:
        super().__init__()
        self.resize_to_next = resize_to_next
        self.levels = len(in_channels)
        for i, ch in enumerate(in_channels, start=1):
            self.add_module(f"layer{i}_rn", nn.Conv2d(ch, features, kernel_size=3, padding=1, bias=False))
        for i in range(1, self.levels + 1):
            has_res = deepest_has_residual or i < self.levels
            self.add_module(f"refinenet{i}", FeatureFusionBlock(features, has_res, relu_quirk, align_corners))

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(features) != self.levels:
            raise ValueError(f"DPTFusion: expected {self.levels} feature maps, got {len(features)}")
        rn = [getattr(self, f"layer{i}_rn")(f) for i, f in enumerate(features, start=1)]
        out = None
        for i in range(self.levels, 0, -1):
            lateral = rn[i - 1]
            x, lateral = (lateral, None) if out is None else (out, lateral)
            target = tuple(rn[i - 2].shape[2:]) if i > 1 else None
            out = getattr(self, f"refinenet{i}")(x, lateral, size=target if self.resize_to_next else None)
            if target is not None and not self.resize_to_next:
                out = out[:, :, : target[0], : target[1]]
        return out
