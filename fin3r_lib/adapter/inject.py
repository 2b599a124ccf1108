"""Putting the adapter into a backbone's encoder (PEFT injection), reading it back, switching it off."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from fin3r_lib.adapter.config import ADAPTER_NAME, DEFAULT_ALPHA, DEFAULT_RANK, AdapterConfig, AdapterError
from fin3r_lib.adapter.layer import ReNormLoraLinear
from fin3r_lib.models.base import ReconstructionModel


def target_pattern(model: ReconstructionModel) -> str:
    """Regular expression (PEFT full match) naming exactly the encoder blocks' `attn.qkv` modules."""
    if not model.encoder_blocks_path:
        raise AdapterError(f"model {type(model).__name__} declares no encoder_blocks_path; cannot place an adapter")
    return rf"{re.escape(model.encoder_blocks_path)}\.\d+\.attn\.qkv"


def lora_config(config: AdapterConfig, target_modules: str) -> LoraConfig:
    """The PEFT LoraConfig of the adapter, with `ReNormLoraLinear` registered for `nn.Linear`."""
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        target_modules=target_modules,
        lora_dropout=0.0,
        bias="none",
        init_lora_weights=True,  # A Kaiming-uniform, B zero
    )
    lora._register_custom_module({nn.Linear: ReNormLoraLinear})
    return lora


def apply_adapter(
    model: ReconstructionModel, rank: int = DEFAULT_RANK, alpha: float = DEFAULT_ALPHA
) -> ReconstructionModel:
    """Inject a fresh re-normalization LoRA into every encoder block's `attn.qkv`, in place.

    Afterwards only the LoRA tensors require gradients; every other parameter is frozen. A fresh
    adapter (B = 0) reproduces the base outputs up to the formula's 1e-6 in the norm denominator.
    Returns the same model.
    """
    config = AdapterConfig(rank, alpha)
    if adapter_layers(model):
        raise AdapterError(
            f"model {model.name or type(model).__name__} already has an adapter: {adapter_config(model)}"
        )
    targets = target_pattern(model)
    blocks = model.encoder_blocks()
    for i, block in enumerate(blocks):
        qkv = getattr(getattr(block, "attn", None), "qkv", None)
        if not isinstance(qkv, nn.Linear):
            raise AdapterError(
                f"encoder block {i} at {model.encoder_blocks_path}: expected an `attn.qkv` nn.Linear, "
                f"got {type(qkv).__name__}"
            )
    inject_adapter_in_model(lora_config(config, targets), model, adapter_name=ADAPTER_NAME)
    if len(adapter_layers(model)) != len(blocks):
        raise AdapterError(f"adapter reached {len(adapter_layers(model))} of {len(blocks)} encoder blocks")
    return model


def adapter_layers(model: nn.Module) -> list[ReNormLoraLinear]:
    """The model's re-normalized LoRA layers, in module order (empty when no adapter is applied)."""
    return [m for m in model.modules() if isinstance(m, ReNormLoraLinear)]


def adapter_config(model: nn.Module) -> AdapterConfig | None:
    """Rank and alpha of the adapter applied to `model`, or None when it has none."""
    layers = adapter_layers(model)
    if not layers:
        return None
    layer = layers[0]
    return AdapterConfig(layer.r[ADAPTER_NAME], layer.lora_alpha[ADAPTER_NAME])


@contextmanager
def adapter_disabled(model: nn.Module) -> Iterator[nn.Module]:
    """Run the base model inside the block: every adapter layer is switched off, then restored.

    Uses PEFT's `enable_adapters`; the LoRA tensors' `requires_grad` flags are restored on exit.
    """
    layers = adapter_layers(model)
    flags = [(p, p.requires_grad) for layer in layers for p in layer.parameters()]
    was_disabled = [layer.disable_adapters for layer in layers]
    for layer in layers:
        layer.enable_adapters(False)
    try:
        yield model
    finally:
        for layer, disabled in zip(layers, was_disabled, strict=True):
            layer.enable_adapters(not disabled)
        for param, flag in flags:
            param.requires_grad_(flag)
