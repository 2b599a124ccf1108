"""VGGT's DPT head (depth head, point head, and the track head's feature extractor).

Reads the decoder layers `layers` ([B, S, P, 2C] tokens), reassembles them into a 4-level pyramid
(1x1 `projects`, then ConvT x4 / ConvT x2 / identity / conv stride 2), fuses it with the generic
`DPTFusion` (in-place-ReLU quirk on, no residual unit in the deepest refine-net), upsamples to the
image size (bilinear, align_corners=True) and applies `output_conv2` and the activations. The UV
positional embedding is added after each `projects` conv and after the final upsampling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from fin3r_lib.models.layers.dpt_blocks import DPTFusion, interpolate, token_maps

#: scale of the UV positional embedding and its base frequency
UV_EMBED_RATIO = 0.1
UV_EMBED_OMEGA = 100.0


def uv_axes(
    width: int, height: int, aspect_ratio: float, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(u [W], v [H]): pixel-centre coordinates normalized by the diagonal of a W/H = `aspect_ratio` image."""
    diag = (1 + aspect_ratio**2) ** 0.5
    span_x, span_y = aspect_ratio / diag, 1 / diag
    u = torch.linspace(-span_x * (width - 1) / width, span_x * (width - 1) / width, width, dtype=dtype, device=device)
    v = torch.linspace(
        -span_y * (height - 1) / height, span_y * (height - 1) / height, height, dtype=dtype, device=device
    )
    return u, v


def sincos_embed(pos: torch.Tensor, dim: int, omega_0: float = UV_EMBED_OMEGA) -> torch.Tensor:
    """1D sinusoidal embedding of positions [M] -> [M, dim] = [sin(pos*w), cos(pos*w)], w_j = omega_0^(-2j/dim).

    Computed in float64, returned in float32.
    """
    omega = 1.0 / omega_0 ** (torch.arange(dim // 2, dtype=torch.float64, device=pos.device) / (dim / 2.0))
    out = pos.reshape(-1).to(torch.float64)[:, None] * omega[None]
    return torch.cat([out.sin(), out.cos()], dim=1).float()


def add_uv_embedding_(x: torch.Tensor, image_hw: tuple[int, int]) -> torch.Tensor:
    """Add the DPT UV positional embedding to feature maps x [N, C, H, W] in place; returns x.

    Channel c < C/2 embeds the column's u, c >= C/2 the row's v (each half [sin, cos], scaled by
    0.1). The embedding is separable, so it is added per axis without a full [C, H, W] tensor.
    """
    c, h, w = x.shape[1:]
    u, v = uv_axes(w, h, image_hw[1] / image_hw[0], x.dtype, x.device)
    x[:, : c // 2] += (sincos_embed(u, c // 2) * UV_EMBED_RATIO).to(x.dtype).T[:, None, :]
    x[:, c // 2 :] += (sincos_embed(v, c // 2) * UV_EMBED_RATIO).to(x.dtype).T[:, :, None]
    return x


def _activate(x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "exp":
        return x.exp()
    if kind == "inv_log":
        return torch.sign(x) * torch.expm1(x.abs())
    raise ValueError(f"DPT head: unknown activation {kind!r}; expected 'exp' or 'inv_log'")


class DPTHead(nn.Module):
    """Dense head over decoder layers; `output_dim` channels = values + 1 confidence (or features only)."""

    def __init__(
        self,
        dim_in: int,
        layers: Sequence[int],
        patch_size: int = 14,
        output_dim: int = 4,
        activation: str = "inv_log",
        features: int = 256,
        out_channels: Sequence[int] = (256, 512, 1024, 1024),
        feature_only: bool = False,
    ) -> None:
        super().__init__()
        if len(layers) != 4 or len(out_channels) != 4:
            raise ValueError(f"DPT head: expected 4 layers and 4 widths, got {list(layers)} and {list(out_channels)}")
        self.layers = tuple(layers)
        self.patch_size = patch_size
        self.activation = activation
        self.feature_only = feature_only
        self.norm = nn.LayerNorm(dim_in)
        self.projects = nn.ModuleList([nn.Conv2d(dim_in, oc, kernel_size=1) for oc in out_channels])
        c = out_channels
        self.resize_layers = nn.ModuleList(
            [
                nn.ConvTranspose2d(c[0], c[0], kernel_size=4, stride=4),
                nn.ConvTranspose2d(c[1], c[1], kernel_size=2, stride=2),
                nn.Identity(),
                nn.Conv2d(c[3], c[3], kernel_size=3, stride=2, padding=1),
            ]
        )
        self.scratch = DPTFusion(out_channels, features, relu_quirk=True, deepest_has_residual=False)
        if feature_only:
            self.scratch.output_conv1 = nn.Conv2d(features, features, kernel_size=3, padding=1)
        else:
            self.scratch.output_conv1 = nn.Conv2d(features, features // 2, kernel_size=3, padding=1)
            self.scratch.output_conv2 = nn.Sequential(
                nn.Conv2d(features // 2, 32, kernel_size=3, padding=1),
                nn.ReLU(),
                nn.Conv2d(32, output_dim, kernel_size=1),
            )

    def forward(
        self,
        tokens: Mapping[int, torch.Tensor],
        image_hw: tuple[int, int],
        patch_start_idx: int,
        frames_chunk_size: int | None = 8,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Decoder tokens {layer: [B, S, P, 2C]} -> (values [B, S, H, W, C-1], conf [B, S, H, W]).

        A feature-only head returns (features [B, S, F, H, W], None).

        Frames go through in chunks of `frames_chunk_size` (None: all at once); outputs do not change.
        """
        s = tokens[self.layers[0]].shape[1]
        chunk = frames_chunk_size or s
        outs = [
            self._forward_frames(tokens, image_hw, patch_start_idx, i, min(i + chunk, s)) for i in range(0, s, chunk)
        ]
        if self.feature_only:
            return torch.cat(outs, dim=1), None
        return torch.cat([o[0] for o in outs], dim=1), torch.cat([o[1] for o in outs], dim=1)

    def _forward_frames(
        self, tokens: Mapping[int, torch.Tensor], image_hw: tuple[int, int], patch_start_idx: int, start: int, end: int
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        h, w = image_hw
        ph, pw = h // self.patch_size, w // self.patch_size
        pyramid = []
        for level, layer in enumerate(self.layers):
            x = tokens[layer][:, start:end, patch_start_idx:]
            b, s = x.shape[:2]
            x = self.norm(x.reshape(b * s, -1, x.shape[-1]))
            x = token_maps(x, ph, pw)
            x = self.projects[level](x)
            x = add_uv_embedding_(x, image_hw)
            pyramid.append(self.resize_layers[level](x))
        out = self.scratch.output_conv1(self.scratch(pyramid))
        out = interpolate(out, size=(ph * self.patch_size, pw * self.patch_size), mode="bilinear", align_corners=True)
        out = add_uv_embedding_(out, image_hw)
        if self.feature_only:
            return out.reshape(b, s, *out.shape[1:])
        out = self.scratch.output_conv2(out).permute(0, 2, 3, 1)
        values = _activate(out[..., :-1], self.activation)
        conf = 1 + out[..., -1].exp()
        return values.reshape(b, s, *values.shape[1:]), conf.reshape(b, s, *conf.shape[1:])
