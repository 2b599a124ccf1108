"""VGGT's camera head: iterative refinement of a 9-number pose encoding per frame.

Each iteration embeds the (detached) previous estimate (the first: a learned empty encoding),
modulates the layer-normalized camera tokens with it (adaLN: shift, scale, gate), runs a trunk of
transformer blocks over the frame axis and adds the `pose_branch` delta. Translation and quaternion
are linear, the fields of view go through ReLU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fin3r_lib.models.layers.block import Block
from fin3r_lib.models.layers.mlp import Mlp

POSE_DIM = 9


class CameraHead(nn.Module):
    """Camera tokens of the last decoder layer [B, S, 2C] -> pose encodings, one per iteration."""

    def __init__(self, dim_in: int, trunk_depth: int = 4, num_heads: int = 16, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            *[Block(dim_in, num_heads, mlp_ratio, init_values=0.01, norm_eps=1e-5) for _ in range(trunk_depth)]
        )
        self.token_norm = nn.LayerNorm(dim_in)
        self.trunk_norm = nn.LayerNorm(dim_in)
        self.empty_pose_tokens = nn.Parameter(torch.zeros(1, 1, POSE_DIM))
        self.embed_pose = nn.Linear(POSE_DIM, dim_in)
        self.poseLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim_in, 3 * dim_in))
        self.adaln_norm = nn.LayerNorm(dim_in, elementwise_affine=False, eps=1e-6)
        self.pose_branch = Mlp(dim_in, dim_in // 2, out_dim=POSE_DIM)

    def forward(self, camera_tokens: torch.Tensor, iterations: int = 4) -> list[torch.Tensor]:
        """Camera tokens [B, S, 2C] -> list of `iterations` pose encodings [B, S, 9] (last = final)."""
        tokens = self.token_norm(camera_tokens)
        b, s, _ = tokens.shape
        raw = None
        out = []
        for _ in range(iterations):
            raw = None if raw is None else raw.detach()  # no gradient through earlier iterations
            cond = self.embed_pose(self.empty_pose_tokens.expand(b, s, -1) if raw is None else raw)
            shift, scale, gate = self.poseLN_modulation(cond).chunk(3, dim=-1)
            x = gate * (self.adaln_norm(tokens) * (1 + scale) + shift) + tokens
            delta = self.pose_branch(self.trunk_norm(self.trunk(x)))
            raw = delta if raw is None else raw + delta
            out.append(torch.cat([raw[..., :7], F.relu(raw[..., 7:])], dim=-1))
        return out
