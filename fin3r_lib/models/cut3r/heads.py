"""CUT3R's prediction heads (`downstream_head`): DPT heads for the 512 model, linear heads for the 224
model, both with the pose head and the pose-conditioned `final_transform` before the world-point head.

Inputs: `layers` = [encoder tokens, decoder output at 1/2, at 3/4, final (pose token first)], each
[B, N(+1), C], the patch positions and the heads to run. Outputs (reference names), on the model grid:
`pts3d_in_self_view` [B, H, W, 3], `conf_self` [B, H, W], `pts3d_in_other_view`, `conf`,
`rgb` [B, H, W, 3] in [-1, 1], `camera_pose` [B, 7] (see pose.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fin3r_lib.models.croco import CroCoConfig
from fin3r_lib.models.cut3r.pose import raw_to_pose_encoding
from fin3r_lib.models.layers import Attention, Mlp, RoPE2D
from fin3r_lib.models.layers.dpt_blocks import DPTFusion, token_maps


def points_from_raw(raw: torch.Tensor, positive_z: bool = False) -> torch.Tensor:
    """Raw [B, 3, H, W] -> points [B, H, W, 3]: direction * expm1(norm) (z made positive if asked)."""
    xyz = raw.permute(0, 2, 3, 1)
    if positive_z:
        xyz = xyz * torch.sign(xyz[..., -1:])
    d = xyz.norm(dim=-1, keepdim=True)
    return xyz / d.clamp(min=1e-8) * torch.expm1(d)


def conf_from_raw(raw: torch.Tensor) -> torch.Tensor:
    """Raw confidence [B, H, W] -> 1 + exp(raw)."""
    return 1 + raw.exp()


def rgb_from_raw(raw: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Raw colour [B, 3, H, W] -> [B, H, W, 3] in [-1, 1] (sigmoid, kept eps away from the ends)."""
    return (torch.sigmoid(raw.permute(0, 2, 3, 1)) * (1 - 2 * eps) + eps - 0.5) * 2


def unpatchify(feat: torch.Tensor, size: tuple[int, int], patch_size: int) -> torch.Tensor:
    """Per-token values [B, N, C * p * p] -> pixel map [B, C, H, W] (pixel shuffle over the patch grid)."""
    feat = feat.transpose(1, 2).reshape(feat.shape[0], -1, size[0] // patch_size, size[1] // patch_size)
    return F.pixel_shuffle(feat, patch_size)


class ModLN(nn.Module):
    """adaLN: LayerNorm without a learned modulation, then x * (1 + scale) + shift from a condition."""

    def __init__(self, dim: int, cond_dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 2 * dim))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        shift, scale = self.mlp(cond).chunk(2, dim=-1)
        return self.norm(x) * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class ConditionModulationBlock(nn.Module):
    """Transformer block whose two norms are modulated by a condition vector (the pose token)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, rope: RoPE2D) -> None:
        super().__init__()
        self.norm1 = ModLN(dim, dim)
        self.attn = Attention(dim, num_heads, qkv_bias=True, rope=rope)
        self.norm2 = ModLN(dim, dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, cond: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x, cond), pos)
        return x + self.mlp(self.norm2(x, cond))


class PoseHead(nn.Module):
    """MLP from the final pose token [B, C] to the 7 raw pose numbers."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.mlp = Mlp(dim, int(dim * mlp_ratio), 7)

    def forward(self, token: torch.Tensor) -> torch.Tensor:
        return self.mlp(token)


class DPTHead(nn.Module):
    """CroCo DPT adapter: reassemble 4 token maps (x4, x2, x1, x1/2), fuse, regress `channels` at full size."""

    def __init__(self, cfg: CroCoConfig, channels: int) -> None:
        super().__init__()
        self.patch_size = cfg.patch_size
        dims_in = (cfg.enc_dim, cfg.dec_dim, cfg.dec_dim, cfg.dec_dim)
        d = cfg.dpt_layer_dims
        self.act_postprocess = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(dims_in[0], d[0], 1), nn.ConvTranspose2d(d[0], d[0], 4, stride=4)),
                nn.Sequential(nn.Conv2d(dims_in[1], d[1], 1), nn.ConvTranspose2d(d[1], d[1], 2, stride=2)),
                nn.Sequential(nn.Conv2d(dims_in[2], d[2], 1)),
                nn.Sequential(nn.Conv2d(dims_in[3], d[3], 1), nn.Conv2d(d[3], d[3], 3, stride=2, padding=1)),
            ]
        )
        self.scratch = DPTFusion(d, cfg.dpt_features, resize_to_next=False)
        # the release stores the 3x3 convs twice, as layer{1..4}_rn and as layer_rn.{0..3}: same modules
        self.scratch.layer_rn = nn.ModuleList(getattr(self.scratch, f"layer{i}_rn") for i in range(1, 5))
        f = cfg.dpt_features
        self.head = nn.Sequential(
            nn.Conv2d(f, f // 2, 3, padding=1),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
            nn.Conv2d(f // 2, cfg.dpt_last_dim, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(cfg.dpt_last_dim, channels, 1),
        )

    def forward(self, layers: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        nh, nw = size[0] // self.patch_size, size[1] // self.patch_size
        maps = [act(token_maps(tok, nh, nw)) for act, tok in zip(self.act_postprocess, layers, strict=True)]
        return self.head(self.scratch(maps))


class LinearMap(Mlp):
    """Per-token MLP (`fc1`, `fc2`) to `channels` x patch x patch values, pixel-shuffled to [B, channels, H, W]."""

    def __init__(self, cfg: CroCoConfig, channels: int) -> None:
        super().__init__(cfg.dec_dim, int(cfg.mlp_ratio * cfg.dec_dim), channels * cfg.patch_size**2)
        self.patch_size = cfg.patch_size

    def forward(self, tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:  # type: ignore[override]
        return unpatchify(super().forward(tokens), size, self.patch_size)


#: the outputs a head call can be limited to (see `_PoseConditionedHead.forward`)
HEADS = ("depth", "camera", "points", "rgb")


class _PoseConditionedHead(nn.Module, ABC):
    """Shared part: pose head on the final pose token, the two `final_transform` blocks, and which maps run.

    Subclasses provide the three dense maps (`self_map`, `cross_map`, `rgb_map`); a call computes only
    the outputs of the heads asked for, the others' modules are not run.
    """

    #: the self-view head's z is made positive (the 224 linear model)
    self_positive_z = False

    def __init__(self, cfg: CroCoConfig, rope: RoPE2D) -> None:
        super().__init__()
        self.pose_head = PoseHead(cfg.dec_dim)
        self.final_transform = nn.ModuleList(
            ConditionModulationBlock(cfg.dec_dim, cfg.dec_heads, 4.0, rope) for _ in range(2)
        )

    @abstractmethod
    def self_map(self, layers: Sequence[torch.Tensor], tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Raw self-view map [B, 4, H, W] from the image tokens."""

    @abstractmethod
    def cross_map(self, layers: Sequence[torch.Tensor], tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Raw cross-view map [B, 4, H, W] from the pose-conditioned image tokens."""

    @abstractmethod
    def rgb_map(self, layers: Sequence[torch.Tensor], tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Raw colour map [B, 3, H, W] from the image tokens."""

    def forward(
        self, layers: Sequence[torch.Tensor], pos: torch.Tensor, size: tuple[int, int], heads: Sequence[str] = HEADS
    ) -> dict:
        """Reference outputs of the heads asked for: "depth" (`pts3d_in_self_view`, `conf_self`), "camera"
        (`camera_pose`), "points" (`pts3d_in_other_view`, `conf`), "rgb" (`rgb`)."""
        pose_token, tokens = layers[-1][:, 0], layers[-1][:, 1:]
        out: dict[str, torch.Tensor] = {}
        if "depth" in heads:
            own = self.self_map(layers, tokens, size)
            out["pts3d_in_self_view"] = points_from_raw(own[:, :3], positive_z=self.self_positive_z)
            out["conf_self"] = conf_from_raw(own[:, 3])
        if "rgb" in heads:
            out["rgb"] = rgb_from_raw(self.rgb_map(layers, tokens, size))
        if "camera" in heads:
            out["camera_pose"] = raw_to_pose_encoding(self.pose_head(pose_token))
        if "points" in heads:
            cross = tokens
            for blk in self.final_transform:
                cross = blk(cross, pose_token, pos)
            other = self.cross_map(layers, cross, size)
            out["pts3d_in_other_view"] = points_from_raw(other[:, :3])
            out["conf"] = conf_from_raw(other[:, 3])
        return out


class DPTPts3dPose(_PoseConditionedHead):
    """The 512 model's heads: `dpt_self`, `final_transform` + `dpt_cross`, `dpt_rgb`, `pose_head`."""

    def __init__(self, cfg: CroCoConfig, rope: RoPE2D) -> None:
        super().__init__(cfg, rope)
        self.dpt_self = DPTHead(cfg, 4)
        self.dpt_cross = DPTHead(cfg, 4)
        self.dpt_rgb = DPTHead(cfg, 3)

    def self_map(self, layers: Sequence[torch.Tensor], tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.dpt_self([*layers[:-1], tokens], size)

    def cross_map(self, layers: Sequence[torch.Tensor], tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.dpt_cross([*layers[:-1], tokens], size)

    def rgb_map(self, layers: Sequence[torch.Tensor], tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.dpt_rgb([*layers[:-1], tokens], size)


class LinearPts3dPose(_PoseConditionedHead):
    """The 224 model's heads: linear `proj` (self view), `rgb_proj`, and `cross_proj` after `final_transform`."""

    self_positive_z = True

    def __init__(self, cfg: CroCoConfig, rope: RoPE2D) -> None:
        super().__init__(cfg, rope)
        self.proj = LinearMap(cfg, 4)
        self.rgb_proj = LinearMap(cfg, 3)
        self.cross_proj = LinearMap(cfg, 4)

    def self_map(self, layers: Sequence[torch.Tensor], tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.proj(tokens, size)

    def cross_map(self, layers: Sequence[torch.Tensor], tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.cross_proj(tokens, size)

    def rgb_map(self, layers: Sequence[torch.Tensor], tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.rgb_proj(tokens, size)
