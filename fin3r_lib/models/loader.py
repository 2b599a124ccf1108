"""Building and loading models: registry entry + checkpoint + adapter + device + precision, in one place.

`build_model` is the library's builder (random initial weights when no checkpoint is given: tests,
benchmarks, the trainer's student). `load_model(ModelOptions)` is what users reach through the node
parameters, every `fin3r` subcommand and the trainer's config: the same six options with the same
defaults everywhere (`fin3r_lib.model_options.ModelOptions`), every failure one `ModelLoadError`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fin3r_lib.model_options import ModelOptions
from fin3r_lib.models.base import ReconstructionModel
from fin3r_lib.models.checkpoint import load_checkpoint_into
from fin3r_lib.models.checkpoint_ref import resolve_checkpoint
from fin3r_lib.models.random_heads import bias_random_camera_head, bias_random_point_heads
from fin3r_lib.models.registry import model_entry

#: weights dtype of each `precision`; `auto` keeps fp32 weights (the models autocast on CUDA themselves)
DTYPES: dict[str, torch.dtype] = {
    "auto": torch.float32,
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
}


def resolve_device(device: str | torch.device) -> torch.device:
    """`"auto"` -> cuda when torch sees a GPU, else cpu; anything else as a torch.device."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def build_model(
    name: str,
    checkpoint: str | Path | None = None,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    adapter: str | Path | None = None,
    tool: str = "python",
) -> ReconstructionModel:
    """Build variant `name`, load `checkpoint` if given, optionally wire in a Fin3R adapter.

    `device` may be "auto" (cuda when torch sees a GPU, else cpu).
    `checkpoint`: a local file (.pt/.pth/.safetensors), a Hugging Face folder, a repo id, or
    "default" for the variant's released weights; None leaves random initial weights (tests,
    benchmarks). `device="meta"` builds without allocating (for key/shape checks). The model is
    returned in eval mode. `dtype` is the weights' dtype, except for models with an `autocast_dtype`
    (CUT3R): they keep fp32 weights and run their encoder and decoder under autocast to `dtype`, the
    heads and the carried state in fp32. `tool` ("cli", "ros", "python") sets the syntax of the hint in a
    "file not found / not cached" error.
    """
    entry = model_entry(name)
    device = resolve_device(device)
    if checkpoint is not None:  # a missing or uncached file fails before the model is built (a second or more)
        checkpoint = resolve_checkpoint(checkpoint, entry, tool=tool)
    if checkpoint is not None or device.type == "meta":
        with torch.device("meta"):
            model = entry.builder()
    else:
        model = entry.builder()
    model.name = name
    if dtype != torch.float32 and hasattr(model, "autocast_dtype"):
        model.autocast_dtype, dtype = dtype, torch.float32  # CUT3R: fp32 weights and heads, autocast body
    if checkpoint is not None:
        load_checkpoint_into(model, checkpoint, entry, tool=tool)
    if device.type != "meta":
        model = model.to(device=device, dtype=dtype)
    if adapter:
        from fin3r_lib.adapter import load_adapter  # PEFT (seconds to import) only when an adapter is asked for

        load_adapter(model, adapter, tool=tool)
    return model.eval()


def load_model(options: ModelOptions, tool: str = "python") -> ReconstructionModel:
    """The model `options` describe, for user-facing tools; every failure is one ModelLoadError.

    Random weights (`checkpoint` none or empty) are drawn from torch's generator seeded with
    `options.seed` (the global generator is left as it was) and made usable by
    `bias_random_camera_head` (VGGT) and `bias_random_point_heads` (CUT3R, DUSt3R, MASt3R), so two
    runs with the same seed are identical. `tool` sets the syntax of hints in errors (see build_model).
    With `options.compile` the transformer blocks are compiled (after the adapter is wired in).
    """
    o, dtype = options, DTYPES[options.precision]
    try:
        if not o.random_weights:
            model = build_model(o.model, o.checkpoint, device=o.device, dtype=dtype, adapter=o.adapter, tool=tool)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(o.seed)
                model = build_model(o.model, None, device="cpu", dtype=dtype, adapter=o.adapter, tool=tool)
            bias_random_camera_head(model)
            bias_random_point_heads(model)
            model = model.to(resolve_device(o.device)).eval()
        if o.compile:
            from fin3r_lib.models.compile import compile_blocks  # imports every backbone's blocks: only when asked

            compile_blocks(model)
        return model
    except Exception as exc:  # CheckpointError, UnknownModelError, AdapterError, CUDA errors, ...
        raise o.load_error(exc) from exc
