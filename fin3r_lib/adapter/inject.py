"""Putting the adapter into a backbone's encoder (PEFT injection), reading it back, switching it off."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora.layer import Linear as LoraLinear
from torch import nn

from fin3r_lib.adapter.config import (
    ADAPTER_NAME,
    DEFAULT_ALPHA,
    DEFAULT_RANK,
    RELEASED_DROPOUT,
    AdapterConfig,
    AdapterError,
)
from fin3r_lib.adapter.layer import check_fused_qkv, is_renorm_layer, use_renorm_variant
from fin3r_lib.models.base import ReconstructionModel


def target_pattern(model: ReconstructionModel) -> str:
    """Regular expression (PEFT full match) naming exactly the encoder blocks' `attn.qkv` modules."""
    if not model.encoder_blocks_path:
        raise AdapterError(f"model {type(model).__name__} declares no encoder_blocks_path; cannot place an adapter")
    return rf"{re.escape(model.encoder_blocks_path)}\.\d+\.attn\.qkv"


def lora_config(config: AdapterConfig, target_modules: str) -> LoraConfig:
    """The plain PEFT LoraConfig of the adapter (the release's settings; dropout configured, never applied)."""
    return LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        target_modules=target_modules,
        lora_dropout=RELEASED_DROPOUT,
        bias="none",
        init_lora_weights=True,  # A Kaiming-uniform, B zero
    )


def inject_renorm_lora(module: nn.Module, config: AdapterConfig, target_modules: str) -> list[LoraLinear]:
    """Inject PEFT LoRA into the fused qkv linears of `module` whose names fully match `target_modules`, each
    with the re-normalized forward (PEFT's `LoraVariant` slot); returns the new layers, in module order.

    Every target is checked before anything changes, so a refused call leaves `module` as it was."""
    targets = [m for name, m in module.named_modules() if re.fullmatch(target_modules, name)]
    for target in targets:
        if isinstance(target, nn.Linear):
            check_fused_qkv(target.in_features, target.out_features)
    inject_adapter_in_model(lora_config(config, target_modules), module, adapter_name=ADAPTER_NAME)
    layers = [m for m in module.modules() if isinstance(m, LoraLinear) and ADAPTER_NAME in m.lora_A]
    for layer in layers:
        use_renorm_variant(layer, ADAPTER_NAME)
    return layers


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
    inject_renorm_lora(model, config, targets)
    if len(adapter_layers(model)) != len(blocks):
        raise AdapterError(f"adapter reached {len(adapter_layers(model))} of {len(blocks)} encoder blocks")
    return model


def adapter_layers(model: nn.Module) -> list[LoraLinear]:
    """The model's re-normalized LoRA layers, in module order (empty when no adapter is applied)."""
    return [m for m in model.modules() if is_renorm_layer(m, ADAPTER_NAME)]


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
