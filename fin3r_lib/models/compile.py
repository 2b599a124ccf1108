"""Optional `torch.compile` of a model's transformer blocks (ViT encoder, VGGT aggregator, CroCo decoders).

Each block is compiled in place (`nn.Module.compile`), so parameter names, the state dict and PEFT
adapters are untouched; the heads and the Python glue between blocks stay eager. Every block of a
kind runs the same code, so one compiled graph serves them all (torch recompiles per input shape).
The first forward at a new image size is slow (compilation); later ones reuse the graph.

Inductor keeps fp16 intermediates in fp32 unless told to emulate the casts; CUT3R's encoder rounds
q/k to fp16 for RoPE as its reference does, and without the rounding its camera pose moved 1.2e-4
(cut3r-tiny, random weights) instead of 6e-7. So inductor compiles with `emulate_precision_casts`.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from fin3r_lib.models.cut3r.decoder import DecoderBlock
from fin3r_lib.models.layers.block import Block

#: the transformer blocks that `compile_blocks` compiles
BLOCK_TYPES: tuple[type[nn.Module], ...] = (Block, DecoderBlock)


def compile_blocks(model: nn.Module, backend: str | Callable = "inductor") -> int:
    """Compile every transformer block of `model` in place with torch.compile(`backend`); returns how many.

    Raises ValueError when `model` has no such block (nothing would be compiled).
    """
    blocks = [m for m in model.modules() if isinstance(m, BLOCK_TYPES)]
    if not blocks:
        raise ValueError(f"compile_blocks: {type(model).__name__} has no transformer block to compile")
    options = {"emulate_precision_casts": True} if backend == "inductor" else None
    for block in blocks:
        block.compile(backend=backend, options=options)
    return len(blocks)
