"""Shared helpers of the adapter tests (no tests here): toy backbones shaped like VGGT and CUT3R encoders.

Their encoder blocks are the real shared `Block`s, placed under the real paths
(`aggregator.patch_embed.blocks`, `enc_blocks`), followed by a frozen "decoder" so the tests can see
that nothing outside the encoder changes.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from collections.abc import Sequence

import numpy as np
import torch
from peft import LoraConfig, get_peft_model
from torch import nn

from fin3r_lib.adapter.layer import RENORM_EPS
from fin3r_lib.models.base import ReconstructionModel
from fin3r_lib.models.grid import GridMapping
from fin3r_lib.models.layers import Block, RoPE2D, grid_positions

PATCH = 8


class _PatchEncoder(nn.Module):
    """Patch embedding + blocks: the encoder of the toy VGGT (DINOv2-like `patch_embed`)."""

    def __init__(self, dim: int, heads: int, depth: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, PATCH, PATCH)
        self.blocks = nn.ModuleList(Block(dim, heads, init_values=1.0, norm_eps=1e-6) for _ in range(depth))


class ToyModel(ReconstructionModel):
    """A small backbone: patch projection and encoder blocks (get the adapter), a frozen decoder block and head."""

    #: whether the encoder blocks use 2D RoPE on the patch grid
    uses_rope = False

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.decoder = Block(dim, heads)
        self.head = nn.Linear(dim, 4)

    @abstractmethod
    def patch_proj(self) -> nn.Conv2d:
        """The patch-embedding convolution."""

    def prepare(self, images: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[GridMapping]]:
        raise NotImplementedError("toy model: tensors only")

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_proj()(images.flatten(0, 1))
        h, w = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        pos = grid_positions(h, w, x.device) if self.uses_rope else None
        for block in self.encoder_blocks():
            x = block(x, pos)
        return x

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        tokens = self.encode(images)
        return {"tokens": tokens, "out": self.head(self.decoder(tokens))}


class ToyVGGT(ToyModel):
    """Encoder at `aggregator.patch_embed` with VGGT's block settings (LayerScale, LayerNorm eps 1e-6)."""

    encoder_blocks_path = "aggregator.patch_embed.blocks"

    def __init__(self, dim: int = 32, heads: int = 4, depth: int = 2) -> None:
        super().__init__(dim, heads)
        self.aggregator = nn.Module()
        self.aggregator.patch_embed = _PatchEncoder(dim, heads, depth)

    def patch_proj(self) -> nn.Conv2d:
        return self.aggregator.patch_embed.proj


class ToyCUT3R(ToyModel):
    """Encoder blocks at `enc_blocks` with 2D RoPE, as in CUT3R / DUSt3R / MASt3R."""

    encoder_blocks_path = "enc_blocks"
    uses_rope = True

    def __init__(self, dim: int = 32, heads: int = 4, depth: int = 2) -> None:
        super().__init__(dim, heads)
        self.patch_embed = nn.Conv2d(3, dim, PATCH, PATCH)
        rope = RoPE2D(100.0)
        self.enc_blocks = nn.ModuleList(Block(dim, heads, rope=rope) for _ in range(depth))

    def patch_proj(self) -> nn.Conv2d:
        return self.patch_embed


def toy_model(kind: str, seed: int = 0, **kwargs: int) -> ToyModel:
    """A toy backbone ('vggt' or 'cut3r') with seeded weights, in eval mode."""
    torch.manual_seed(seed)
    model = {"vggt": ToyVGGT, "cut3r": ToyCUT3R}[kind](**kwargs)
    model.name = f"toy-{kind}"
    return model.eval()


def toy_images(seed: int = 1, batch: int = 1, frames: int = 2, size: tuple[int, int] = (24, 32)) -> torch.Tensor:
    """Random model-grid images [B, S, 3, H, W] in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, frames, 3, *size, generator=gen)


def randomize_lora(model: nn.Module, seed: int = 2, std: float = 0.5) -> None:
    """Give every LoRA A and B random values (B is zero in a fresh adapter)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".lora_" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * std)


def reference_renorm(out: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """The published re-normalization written out independently, in float64: each third of `out` scaled to
    the norm of the same third of `base` (q' = q * ||q0|| / (||q|| + 1e-6), same for k and v)."""
    out, base = out.double(), base.double()
    dim = out.shape[-1] // 3
    parts = []
    for j in range(3):
        s, s0 = out[..., j * dim : (j + 1) * dim], base[..., j * dim : (j + 1) * dim]
        parts.append(s * s0.norm(dim=-1, keepdim=True) / (s.norm(dim=-1, keepdim=True) + RENORM_EPS))
    return torch.cat(parts, dim=-1)


def reference_renorm_qkv(x: torch.Tensor, weight, bias, lora_a, lora_b, scale: float) -> torch.Tensor:
    """The re-normalized qkv linear in float64: o0 = W x + b, o = o0 + scale * B(A x), then `reference_renorm`."""
    x, weight, bias, lora_a, lora_b = (t.detach().double() for t in (x, weight, bias, lora_a, lora_b))
    o0 = x @ weight.T + bias
    return reference_renorm(o0 + scale * ((x @ lora_a.T) @ lora_b.T), o0)


def fresh_adapter_rtol(base_qkv: torch.Tensor) -> float:
    """Relative change a fresh adapter may make: the formula's ||q0|| / (||q0|| + 1e-6), plus fp32 rounding."""
    norms = torch.linalg.vector_norm(base_qkv.double().unflatten(-1, (3, -1)), dim=-1)
    return RENORM_EPS / norms.min().item() + 4 * torch.finfo(torch.float32).eps


def lora_names(model: nn.Module) -> set[str]:
    """Names of the LoRA parameters."""
    return {n for n, _ in model.named_parameters() if ".lora_" in n}


def _renorm_hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> torch.Tensor:
    """Re-normalize a plain PEFT LoRA qkv output against its base layer's output."""
    return reference_renorm(out, module.base_layer(inputs[0])).to(out.dtype)


def authors_wrapped(model: ReconstructionModel, seed: int = 5) -> ReconstructionModel:
    """A copy of `model` wrapped the way the authors made `vggt_lora.pth`: PEFT on each encoder block's attn,
    random LoRA weights, and a forward hook applying the re-normalization to PEFT's plain LoRA output."""
    wrapped = copy.deepcopy(model)
    for block in wrapped.encoder_blocks():
        config = LoraConfig(r=8, lora_alpha=8, target_modules=["qkv"], lora_dropout=0.1)
        block.attn = get_peft_model(block.attn, config)
        block.attn.base_model.model.qkv.register_forward_hook(_renorm_hook)
    randomize_lora(wrapped, seed=seed)
    return wrapped.eval()


#: LoRA parameters of a ViT-L encoder (24 blocks, width 1024) at rank 8: 24 x (8*1024 + 3072*8)
VIT_L_LORA_PARAMS = 786_432
