"""The parameters of VGGT's track head, so the full release checkpoint loads with `strict=True`.

Reconstruction does not use point tracking: this module holds the release's track-head tensors
under their names and shapes (a DPT feature extractor and the iterative tracker's transformer) and
has no forward pass. A model built with `track_head=False` drops exactly the `track_head.*` keys on
loading instead (and logs it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fin3r_lib.models.layers.mlp import Mlp
from fin3r_lib.models.vggt.dpt_head import DPTHead

#: width of the sinusoidal embedding of each flow coordinate fed to the tracker
FLOW_EMBED_DIM = 64


class _AttnBlock(nn.Module):
    """Pre-norm self-attention block (torch MultiheadAttention) with an MLP."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = Mlp(dim, dim * 4)


class _CrossAttnBlock(nn.Module):
    """Pre-norm cross-attention block with a normalized context and an MLP."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.cross_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = Mlp(dim, dim * 4)


class _UpdateFormer(nn.Module):
    """The tracker's space-time transformer with virtual tokens."""

    def __init__(self, input_dim: int, hidden: int, output_dim: int, heads: int, depth: int, virtual: int) -> None:
        super().__init__()
        self.virual_tracks = nn.Parameter(torch.zeros(1, virtual, 1, hidden))  # (sic: release name)
        self.input_norm = nn.LayerNorm(input_dim)
        self.input_transform = nn.Linear(input_dim, hidden)
        self.output_norm = nn.LayerNorm(hidden)
        self.flow_head = nn.Linear(hidden, output_dim)
        self.time_blocks = nn.ModuleList([_AttnBlock(hidden, heads) for _ in range(depth)])
        self.space_virtual_blocks = nn.ModuleList([_AttnBlock(hidden, heads) for _ in range(depth)])
        self.space_point2virtual_blocks = nn.ModuleList([_CrossAttnBlock(hidden, heads) for _ in range(depth)])
        self.space_virtual2point_blocks = nn.ModuleList([_CrossAttnBlock(hidden, heads) for _ in range(depth)])


class _Tracker(nn.Module):
    """The iterative track predictor: correlation MLP, update transformer, feature/visibility heads."""

    def __init__(
        self, latent: int, corr_levels: int, corr_radius: int, hidden: int, heads: int, depth: int, virtual: int
    ) -> None:
        super().__init__()
        input_dim = 2 * latent + 2 * FLOW_EMBED_DIM + 2 + 2  # corr feats, track feats, flow embedding, flow, +2
        self.query_ref_token = nn.Parameter(torch.zeros(1, 2, input_dim))
        self.corr_mlp = Mlp(corr_levels * (2 * corr_radius + 1) ** 2, hidden, out_dim=latent)
        self.updateformer = _UpdateFormer(input_dim, hidden, latent + 2, heads, depth, virtual)
        self.fmap_norm = nn.LayerNorm(latent)
        self.ffeat_norm = nn.LayerNorm(latent)
        self.ffeat_updater = nn.Sequential(nn.Linear(latent, latent), nn.GELU())
        self.vis_predictor = nn.Sequential(nn.Linear(latent, 1))
        self.conf_predictor = nn.Sequential(nn.Linear(latent, 1))


class TrackHead(nn.Module):
    """Track-head parameters: `feature_extractor` (feature-only DPT head) and `tracker`."""

    def __init__(
        self,
        dim_in: int,
        layers: Sequence[int],
        patch_size: int,
        features: int,
        out_channels: Sequence[int],
        corr_levels: int,
        corr_radius: int,
        hidden: int,
        heads: int,
        depth: int,
        virtual: int,
    ) -> None:
        super().__init__()
        self.feature_extractor = DPTHead(
            dim_in, layers, patch_size, features=features, out_channels=out_channels, feature_only=True
        )
        self.tracker = _Tracker(features, corr_levels, corr_radius, hidden, heads, depth, virtual)
