"""The convolutional parts of MoGe's decoders: residual blocks, 2x resamplers, conv stacks, the MLP.

Layouts follow the release's key names (`layers.{0..5}`, `skip_connection`, `input_blocks`,
`resamplers`, `res_blocks`, `output_blocks`); every 3x3 convolution pads by replication.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from fin3r_lib.errors import InputError

NORMS = ("group_norm", "layer_norm", "instance_norm", "none")


def _norm(kind: str, channels: int) -> nn.Module:
    """group_norm: groups of 32 channels; layer_norm: one group; instance_norm; none: identity."""
    if kind == "group_norm":
        return nn.GroupNorm(channels // 32, channels)
    if kind == "layer_norm":
        return nn.GroupNorm(1, channels)
    if kind == "instance_norm":
        return nn.InstanceNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise InputError(f"MoGe residual block: expected a norm in {NORMS}, got {kind!r}")


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    """3x3 convolution, replicate padding."""
    return nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, padding_mode="replicate")


class ResidualConvBlock(nn.Module):
    """x + layers(x): norm, ReLU, 3x3 conv, norm, ReLU, 3x3 conv; a 1x1 skip conv when widths differ."""

    def __init__(self, c_in: int, c_out: int, hidden: int, in_norm: str, hidden_norm: str) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            _norm(in_norm, c_in),
            nn.ReLU(),
            conv3x3(c_in, hidden),
            _norm(hidden_norm, hidden),
            nn.ReLU(),
            conv3x3(hidden, c_out),
        )
        self.skip_connection = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip_connection(x) + self.layers(x)


def upsampler(kind: str, c_in: int, c_out: int) -> nn.Sequential:
    """2x upsampling then a 3x3 conv: `conv_transpose` (2x2 stride-2 transposed conv) or `nearest`/`bilinear`."""
    if kind == "conv_transpose":
        return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, kernel_size=2, stride=2), conv3x3(c_out, c_out))
    if kind in ("nearest", "bilinear"):
        align = False if kind == "bilinear" else None
        return nn.Sequential(nn.Upsample(scale_factor=2, mode=kind, align_corners=align), conv3x3(c_in, c_out))
    raise InputError(f"MoGe resampler: expected conv_transpose, nearest or bilinear, got {kind!r}")


def _per_level(value: Any, levels: int) -> list[Any]:
    """A per-level list from a list (checked) or one value for all levels."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) < levels:
            raise InputError(f"MoGe conv stack: expected {levels} per-level values, got {list(value)}")
        return list(value)[:levels]
    return [value] * levels


class ConvStack(nn.Module):
    """MoGe-2's multi-resolution stack: level i adds its 1x1-projected input, runs residual blocks,
    emits an (optionally projected) output, then is upsampled 2x into level i + 1."""

    def __init__(
        self,
        dim_in: Sequence[int | None] | int | None,
        dim_res_blocks: Sequence[int],
        dim_out: Sequence[int | None] | int | None,
        resamplers: Sequence[str] | str,
        dim_times_res_block_hidden: int = 1,
        num_res_blocks: Sequence[int] | int = 1,
        res_block_in_norm: str = "layer_norm",
        res_block_hidden_norm: str = "group_norm",
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if activation != "relu":
            raise InputError(f"MoGe conv stack: only relu is supported, got activation {activation!r}")
        widths = list(dim_res_blocks)
        levels = len(widths)
        self.input_blocks = nn.ModuleList(
            [
                nn.Conv2d(d, w, 1) if d is not None else nn.Identity()
                for d, w in zip(_per_level(dim_in, levels), widths, strict=True)
            ]
        )
        kinds = _per_level(resamplers, levels - 1)
        self.resamplers = nn.ModuleList(
            [upsampler(k, a, b) for k, a, b in zip(kinds, widths[:-1], widths[1:], strict=True)]
        )
        counts = _per_level(num_res_blocks, levels)
        self.res_blocks = nn.ModuleList(
            [
                nn.Sequential(
                    *(
                        ResidualConvBlock(
                            w, w, dim_times_res_block_hidden * w, res_block_in_norm, res_block_hidden_norm
                        )
                        for _ in range(n)
                    )
                )
                for w, n in zip(widths, counts, strict=True)
            ]
        )
        self.output_blocks = nn.ModuleList(
            [
                nn.Conv2d(w, d, 1) if d is not None else nn.Identity()
                for d, w in zip(_per_level(dim_out, levels), widths, strict=True)
            ]
        )

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """One input map per level (level i at 2^i times level 0's size) -> one output per level."""
        outputs = []
        x = self.input_blocks[0](features[0])
        for i, (blocks, out) in enumerate(zip(self.res_blocks, self.output_blocks, strict=True)):
            if i > 0:
                x = self.resamplers[i - 1](x) + self.input_blocks[i](features[i])
            x = blocks(x)
            outputs.append(out(x))
        return outputs


class MLP(nn.Sequential):
    """Linear layers of widths `dims` with ReLU between them (indices 0, 2, 4, ... hold the weights)."""

    def __init__(self, dims: Sequence[int]) -> None:
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(dims)):
            layers.append(nn.Linear(a, b))
            if i < len(dims) - 2:
                layers.append(nn.ReLU())
        super().__init__(*layers)
