"""DUSt3R's and MASt3R's prediction heads (`downstream_head1`, `downstream_head2`: one per view).

Inputs: `layers` = [encoder tokens, decoder output at 1/2, at 3/4, final normalized], each [B, N, C],
and the model-grid size. Outputs (reference names) on the model grid: `pts3d` [B, H, W, 3] as
direction * expm1(norm), `conf` [B, H, W] = 1 + exp(x); MASt3R adds `desc` [B, H, W, D] (unit
norm) and `desc_conf` [B, H, W] = exp(x). The DPT and the per-token maps are CUT3R's (same CroCo code).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fin3r_lib.models.cut3r.heads import DPTHead, conf_from_raw, points_from_raw, unpatchify
from fin3r_lib.models.dust3r.config import DUSt3RConfig
from fin3r_lib.models.layers import Mlp


def points_and_conf(raw: torch.Tensor) -> dict[str, torch.Tensor]:
    """Raw [B, 4, H, W] -> {`pts3d`, `conf`}."""
    return {"pts3d": points_from_raw(raw[:, :3]), "conf": conf_from_raw(raw[:, 3])}


class DPTPts3d(nn.Module):
    """DUSt3R's DPT head (`dpt`): points and confidence from the four token maps."""

    def __init__(self, cfg: DUSt3RConfig) -> None:
        super().__init__()
        self.dpt = DPTHead(cfg, 4)

    def forward(self, layers: Sequence[torch.Tensor], size: tuple[int, int]) -> dict[str, torch.Tensor]:
        return points_and_conf(self.dpt(layers, size))


class LinearPts3d(nn.Module):
    """DUSt3R's linear head (`proj`): each final decoder token -> 4 values per pixel of its patch."""

    def __init__(self, cfg: DUSt3RConfig) -> None:
        super().__init__()
        self.patch_size = cfg.patch_size
        self.proj = nn.Linear(cfg.dec_dim, 4 * cfg.patch_size**2)

    def forward(self, layers: Sequence[torch.Tensor], size: tuple[int, int]) -> dict[str, torch.Tensor]:
        return points_and_conf(unpatchify(self.proj(layers[-1]), size, self.patch_size))


class CatMLPDPTPts3dDesc(DPTPts3d):
    """MASt3R's head: the DPT points plus `head_local_features`, an MLP on [encoder, final decoder] tokens
    giving `desc_dim` descriptor channels and one descriptor-confidence channel per pixel."""

    def __init__(self, cfg: DUSt3RConfig) -> None:
        super().__init__(cfg)
        self.patch_size = cfg.patch_size
        dim = cfg.enc_dim + cfg.dec_dim
        self.desc_dim = cfg.desc_dim
        self.head_local_features = Mlp(dim, int(cfg.desc_mlp_ratio * dim), (cfg.desc_dim + 1) * cfg.patch_size**2)

    def forward(self, layers: Sequence[torch.Tensor], size: tuple[int, int]) -> dict[str, torch.Tensor]:
        out = super().forward(layers, size)
        local = self.head_local_features(torch.cat([layers[0], layers[-1]], dim=-1))
        local = unpatchify(local, size, self.patch_size).permute(0, 2, 3, 1)
        desc = local[..., : self.desc_dim]
        out["desc"] = desc / desc.norm(dim=-1, keepdim=True)
        out["desc_conf"] = local[..., self.desc_dim].exp()
        return out


def make_head(cfg: DUSt3RConfig) -> nn.Module:
    """The head of one view for `cfg.head`."""
    heads = {"dpt": DPTPts3d, "linear": LinearPts3d, "catmlp_dpt": CatMLPDPTPts3dDesc}
    return heads[cfg.head](cfg)
