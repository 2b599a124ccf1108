"""MoGe's image encoder: a plain DINOv2 ViT/14 (no registers), read out at several blocks.

Differences from VGGT's DINOv2 (`fin3r_lib.models.vggt.patch_embed`) that matter for exact outputs:
no register tokens, and the learned position grid is resized the way DINOv2's own hub code does it
(bicubic by a scale factor of (grid + 0.1) / stored grid, no antialiasing, in fp32), left as stored
only for the stored square grid. `intermediate` returns each requested block's output after the
final LayerNorm, split into patch tokens and the class token.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fin3r_lib.errors import InputError
from fin3r_lib.models.layers.block import Block
from fin3r_lib.models.layers.patch_embed import PatchEmbed

#: DINOv2 hub names -> (embed_dim, depth, num_heads); `dinov2_vitt14` is ours, a tiny size for tests
BACKBONES: dict[str, tuple[int, int, int]] = {
    "dinov2_vits14": (384, 12, 6),
    "dinov2_vitb14": (768, 12, 12),
    "dinov2_vitl14": (1024, 24, 16),
    "dinov2_vitg14": (1536, 40, 24),
    "dinov2_vitt14": (64, 4, 2),
}
PATCH = 14
#: the release's position grid: 518 / 14 = 37 patches a side
STORED_GRID = 37
INTERPOLATE_OFFSET = 0.1


class DinoViT(nn.Module):
    """DINOv2 ViT/14 without registers; key names as DINOv2's (`blocks.{i}.attn.qkv`, ...)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        if name not in BACKBONES:
            raise InputError(f"MoGe backbone: expected one of {', '.join(BACKBONES)}, got {name!r}")
        dim, depth, heads = BACKBONES[name]
        self.embed_dim = dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, STORED_GRID * STORED_GRID + 1, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))  # training-time masking only, kept for the layout
        self.patch_embed = PatchEmbed(PATCH, 3, dim)
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio=4.0, init_values=1.0) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)

    def pos_encoding(self, grid_h: int, grid_w: int, dtype: torch.dtype) -> torch.Tensor:
        """[1, 1 + gh*gw, C] position embeddings for a gh x gw patch grid (DINOv2's resizing)."""
        if (grid_h, grid_w) == (STORED_GRID, STORED_GRID):
            return self.pos_embed.to(dtype)
        pos = self.pos_embed.float()
        grid = pos[:, 1:].reshape(1, STORED_GRID, STORED_GRID, -1).permute(0, 3, 1, 2)
        scale = ((grid_h + INTERPOLATE_OFFSET) / STORED_GRID, (grid_w + INTERPOLATE_OFFSET) / STORED_GRID)
        grid = F.interpolate(grid, scale_factor=scale, mode="bicubic", antialias=False)
        grid = grid.permute(0, 2, 3, 1).flatten(1, 2)
        return torch.cat([pos[:, :1], grid], dim=1).to(dtype)

    def intermediate(
        self, images: torch.Tensor, layers: int | Sequence[int]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Normalized images [N, 3, H, W] (sides multiples of 14) -> per requested block
        (patch tokens [N, gh*gw, C], class token [N, C]), both after the final norm.

        `layers` is a count (the last n blocks) or a list of block indices.
        """
        n, _, h, w = images.shape
        take = set(range(len(self.blocks) - layers, len(self.blocks)) if isinstance(layers, int) else layers)
        if not take or not all(0 <= i < len(self.blocks) for i in take):
            raise InputError(f"MoGe backbone: expected block indices in [0, {len(self.blocks)}), got {layers}")
        x = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(n, -1, -1), x], dim=1)
        x = x + self.pos_encoding(h // PATCH, w // PATCH, x.dtype)
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in take:
                out = self.norm(x)
                outputs.append((out[:, 1:], out[:, 0]))
        return outputs


def patch_grid_features(tokens: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
    """Patch tokens [N, gh*gw, C] -> feature map [N, C, gh, gw]."""
    if tokens.shape[1] != grid_h * grid_w:
        raise InputError(f"MoGe: expected {grid_h}x{grid_w} patch tokens, got {tokens.shape[1]}")
    return tokens.permute(0, 2, 1).unflatten(2, (grid_h, grid_w)).contiguous()
