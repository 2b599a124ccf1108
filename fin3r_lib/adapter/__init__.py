"""The Fin3R re-normalization LoRA adapter on a backbone's encoder: apply, load, save, switch off.

`apply_adapter(model, rank=8, alpha=8)` injects PEFT LoRA layers with the re-normalized forward into
every encoder block's `attn.qkv` and freezes everything else; `load_adapter(model, path)` reads the
authors' files or ours; `save_adapter(model, path)` writes ours (safetensors with metadata).
"""

from fin3r_lib.adapter.config import AdapterConfig, AdapterError
from fin3r_lib.adapter.inject import adapter_config, adapter_disabled, adapter_layers, apply_adapter
from fin3r_lib.adapter.io import load_adapter, read_adapter_file, save_adapter
from fin3r_lib.adapter.layer import ReNormQkvVariant, renormalize_qkv

__all__ = [
    "AdapterConfig",
    "AdapterError",
    "ReNormQkvVariant",
    "adapter_config",
    "adapter_disabled",
    "adapter_layers",
    "apply_adapter",
    "load_adapter",
    "read_adapter_file",
    "renormalize_qkv",
    "save_adapter",
]
