"""CUT3R's local pose memory: a learned bank of slots written after each frame and read to make the
next frame's pose token (keys `pose_retriever.{mem, proj_q, masked_token, write_blocks, read_blocks}`).

Slots are [key | value] of width 2 * dec_dim; the key is the projected mean encoder token of a frame,
the value its decoded pose token. No RoPE.
"""

from __future__ import annotations

import torch
from torch import nn

from fin3r_lib.models.cut3r.decoder import DecoderBlock


class PoseRetriever(nn.Module):
    """Read (`inquire`) and write (`update`) of the pose memory; `mem` is the learned initial memory."""

    def __init__(
        self, size: int, key_dim: int, value_dim: int, num_heads: int, depth: int = 2, norm_eps: float = 1e-6
    ) -> None:
        super().__init__()
        self.value_dim = value_dim
        self.proj_q = nn.Linear(key_dim, value_dim)
        self.masked_token = nn.Parameter(torch.randn(1, 1, value_dim) * 0.2)
        self.mem = nn.Parameter(torch.randn(1, size, 2 * value_dim) * 0.2)
        self.write_blocks = nn.ModuleList(
            DecoderBlock(2 * value_dim, num_heads, norm_eps=norm_eps) for _ in range(depth)
        )
        self.read_blocks = nn.ModuleList(
            DecoderBlock(2 * value_dim, num_heads, norm_eps=norm_eps) for _ in range(depth)
        )

    def initial_memory(self, batch: int) -> torch.Tensor:
        """The learned memory for `batch` sequences, [B, size, 2 * value_dim] (a copy)."""
        return self.mem.expand(batch, -1, -1).clone()

    def inquire(self, image_feat: torch.Tensor, mem: torch.Tensor) -> torch.Tensor:
        """Pose token [B, 1, value_dim] for a frame with mean encoder token `image_feat` [B, 1, key_dim]."""
        x = torch.cat([self.proj_q(image_feat), self.masked_token.expand(image_feat.shape[0], -1, -1)], dim=-1)
        for blk in self.read_blocks:
            x = blk(x, mem)
        return x[..., -self.value_dim :]

    def update(self, mem: torch.Tensor, image_feat: torch.Tensor, pose_feat: torch.Tensor) -> torch.Tensor:
        """Memory after writing one frame (mean encoder token [B, 1, key_dim], pose token [B, 1, value_dim])."""
        feat = torch.cat([self.proj_q(image_feat), pose_feat], dim=-1)
        for blk in self.write_blocks:
            mem = blk(mem, feat)
        return mem
