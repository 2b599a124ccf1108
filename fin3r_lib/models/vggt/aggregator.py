"""VGGT's aggregator: the encoder, then alternating frame-wise and global attention blocks.

Per frame the token sequence is [camera token, register tokens, patch tokens]. Frame blocks attend
within each frame ([B*S, P, C]), global blocks across all frames ([B, S*P, C]). Each decoder layer's
output is [frame-block output, global-block output] (width 2C); only the layers asked for are kept,
which is what makes long sequences fit in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from fin3r_lib.errors import InputError
from fin3r_lib.models.layers.block import Block
from fin3r_lib.models.layers.rope import RoPE2D, grid_positions
from fin3r_lib.models.token_cache import EncoderTokenCache
from fin3r_lib.models.vggt.config import VGGTConfig
from fin3r_lib.models.vggt.patch_embed import DinoV2Encoder

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] (..., 3, H, W) -> ImageNet-normalized (constants made on the input's device)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(3, 1, 1)
    return (images - mean) / std


def first_and_rest(token: torch.Tensor, b: int, s: int) -> torch.Tensor:
    """Special tokens (1, 2, X, C): index 0 for the first frame, 1 for the others -> (B*S, X, C)."""
    first = token[:, :1].expand(b, 1, *token.shape[2:])
    rest = token[:, 1:].expand(b, s - 1, *token.shape[2:])
    return torch.cat([first, rest], dim=1).reshape(b * s, *token.shape[2:])


class Aggregator(nn.Module):
    """Encoder + `depth` pairs of (frame block, global block) with qk-norm and 2D RoPE."""

    def __init__(self, cfg: VGGTConfig) -> None:
        super().__init__()
        c = cfg.embed_dim
        self.patch_size = cfg.patch_size
        self.patch_embed = DinoV2Encoder(
            cfg.image_size, cfg.patch_size, c, cfg.encoder_depth, cfg.num_heads, cfg.num_register_tokens
        )
        self.rope = RoPE2D(cfg.rope_base)

        def block() -> Block:
            return Block(c, cfg.num_heads, cfg.mlp_ratio, init_values=0.01, qk_norm=True, norm_eps=1e-5, rope=self.rope)

        self.frame_blocks = nn.ModuleList([block() for _ in range(cfg.depth)])
        self.global_blocks = nn.ModuleList([block() for _ in range(cfg.depth)])
        self.camera_token = nn.Parameter(torch.randn(1, 2, 1, c) * 1e-6)
        self.register_token = nn.Parameter(torch.randn(1, 2, cfg.num_register_tokens, c) * 1e-6)
        self.patch_start_idx = 1 + cfg.num_register_tokens

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, S, 3, H, W] in [0, 1] -> encoder patch tokens [B*S, (H/p)*(W/p), C]."""
        b, s, ch, h, w = images.shape
        if ch != 3:
            raise InputError(f"VGGT: expected 3 image channels, got {ch}")
        images = images.to(self.camera_token.dtype)  # the model's dtype (e.g. a bf16 build)
        return self.patch_embed(normalize_images(images).reshape(b * s, ch, h, w))

    def positions(self, n: int, grid_hw: tuple[int, int], device: torch.device) -> torch.Tensor:
        """RoPE positions [n, specials + gh*gw, 2]: patches at (y+1, x+1), special tokens at (0, 0)."""
        patches = grid_positions(*grid_hw, device=device, offset=1)
        specials = torch.zeros(self.patch_start_idx, 2, dtype=patches.dtype, device=device)
        return torch.cat([specials, patches]).expand(n, -1, -1)

    def encode_cached(self, images: torch.Tensor, cache: EncoderTokenCache, keys: Sequence[bytes]) -> torch.Tensor:
        """`encode` through `cache`: only images whose key is not cached are encoded (one at a time)."""
        flat = images.reshape(-1, *images.shape[2:])
        return cache.encode(self.patch_embed, keys, flat, lambda one: self.encode(one[None]))

    def forward(
        self,
        images: torch.Tensor,
        keep_layers: Iterable[int] | None = None,
        token_cache: EncoderTokenCache | None = None,
        frame_keys: Sequence[bytes] | None = None,
    ) -> dict[int, torch.Tensor]:
        """Images [B, S, 3, H, W] in [0, 1] -> {layer: [B, S, P, 2C]} for the layers in `keep_layers`.

        `keep_layers=None` keeps every layer. With `token_cache`, `frame_keys` names the B*S images
        (`image_key` of their source pixels) and the encoder runs only for those not cached.
        """
        b, s, _, h, w = images.shape
        keep = set(range(len(self.frame_blocks))) if keep_layers is None else set(keep_layers)
        if token_cache is None:
            patches = self.encode(images)
        elif frame_keys is None:
            raise ValueError("Aggregator: a token_cache needs frame_keys")
        else:
            patches = self.encode_cached(images, token_cache, frame_keys)
        tokens = torch.cat(
            [first_and_rest(self.camera_token, b, s), first_and_rest(self.register_token, b, s), patches], dim=1
        )
        p, c = tokens.shape[1:]
        pos = self.positions(b * s, (h // self.patch_size, w // self.patch_size), images.device)
        pos_global = pos.reshape(b, s * p, 2)
        kept: dict[int, torch.Tensor] = {}
        last = max(keep, default=-1)
        for i, (frame_block, global_block) in enumerate(zip(self.frame_blocks, self.global_blocks, strict=True)):
            if i > last:
                break
            tokens = frame_block(tokens.reshape(b * s, p, c), pos)
            frame_out = tokens.reshape(b, s, p, c)
            tokens = global_block(tokens.reshape(b, s * p, c), pos_global)
            if i in keep:
                kept[i] = torch.cat([frame_out, tokens.reshape(b, s, p, c)], dim=-1)
        return kept
