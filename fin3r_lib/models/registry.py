"""The model factory: configurations registered by name, built by `build_model`.

Each model family registers its variants (e.g. `vggt-1b`, `vggt-tiny`) with `register_model` in its
own module; `MODEL_FAMILIES` lists those modules, imported on first use.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from fin3r_lib.errors import ModelLoadError, UnknownModelError
from fin3r_lib.models.base import ReconstructionModel
from fin3r_lib.models.random_heads import bias_random_point_heads

log = logging.getLogger(__name__)

#: modules that register model variants when imported
MODEL_FAMILIES: tuple[str, ...] = (
    "fin3r_lib.models.vggt",
    "fin3r_lib.models.cut3r",
    "fin3r_lib.models.dust3r",
    "fin3r_lib.models.mast3r",
)


@dataclass(frozen=True)
class ModelEntry:
    """One registered variant: how to build it and where its released weights live."""

    name: str
    builder: Callable[[], ReconstructionModel]
    description: str = ""
    hf_repo: str | None = None  # default Hugging Face repo id of the released weights
    hf_filename: str | None = None  # file inside that repo
    weights_source: str | None = None  # where released weights not on the Hub are published
    weights_file: str | None = None  # the file to take from there


_REGISTRY: dict[str, ModelEntry] = {}
_families_loaded = False


def register_model(
    name: str,
    *,
    description: str = "",
    hf_repo: str | None = None,
    hf_filename: str | None = None,
    weights_source: str | None = None,
    weights_file: str | None = None,
) -> Callable[[Callable[[], ReconstructionModel]], Callable[[], ReconstructionModel]]:
    """Decorator registering a zero-argument builder under `name` (see ModelEntry for the fields)."""

    def wrap(builder: Callable[[], ReconstructionModel]) -> Callable[[], ReconstructionModel]:
        _REGISTRY[name] = ModelEntry(name, builder, description, hf_repo, hf_filename, weights_source, weights_file)
        return builder

    return wrap


def _load_families() -> None:
    global _families_loaded
    if _families_loaded:
        return
    for module in MODEL_FAMILIES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            log.debug("model family %s is not available", module)
    _families_loaded = True


def model_entry(name: str) -> ModelEntry:
    """The registered entry for `name`; UnknownModelError lists the known names."""
    _load_families()
    if name not in _REGISTRY:
        raise UnknownModelError(f"unknown model {name!r}; expected one of: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def list_models() -> list[str]:
    """Names of every registered variant."""
    _load_families()
    return sorted(_REGISTRY)


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
    returned in eval mode. `tool` ("cli", "ros", "python") sets the syntax of the hint in a
    "file not found / not cached" error.
    """
    from fin3r_lib.models.checkpoint import load_checkpoint_into

    entry = model_entry(name)
    device = resolve_device(device)
    if checkpoint is not None or device.type == "meta":
        with torch.device("meta"):
            model = entry.builder()
    else:
        model = entry.builder()
    model.name = name
    if checkpoint is not None:
        load_checkpoint_into(model, checkpoint, entry, tool=tool)
    if device.type != "meta":
        model = model.to(device=device, dtype=dtype)
    if adapter:
        from fin3r_lib.adapter import load_adapter

        load_adapter(model, adapter, tool=tool)
    return model.eval()


def resolve_device(device: str | torch.device) -> torch.device:
    """`"auto"` -> cuda when torch sees a GPU, else cpu; anything else as a torch.device."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def bias_random_camera_head(model: ReconstructionModel) -> None:
    """Give a randomly initialised VGGT camera head a positive field of view (other models: nothing).

    Random VGGT weights give fov = relu(x) = 0, an infinite focal length, for about half the frames; the
    session rejects those frames (non-finite intrinsics), so a random model would reconstruct nothing.
    Shifting the field-of-view outputs' bias by +0.5 keeps random models usable for tests and demos.
    """
    camera_head = getattr(model, "camera_head", None)
    if camera_head is not None:
        with torch.no_grad():
            camera_head.pose_branch.fc2.bias[7:] += 0.5


def load_model(
    name: str,
    checkpoint: str | Path | None = None,
    *,
    device: str | torch.device = "auto",
    dtype: torch.dtype = torch.float32,
    adapter: str | Path | None = None,
    seed: int = 0,
    tool: str = "python",
) -> ReconstructionModel:
    """`build_model` for user-facing options (node parameters, CLI flags): every failure is one ModelLoadError.

    An empty string or "none" for `checkpoint` means random initial weights, drawn from torch's generator
    seeded with `seed` (the global generator is left as it was) and made usable by
    `bias_random_camera_head` (VGGT) and `bias_random_point_heads` (CUT3R, DUSt3R, MASt3R), so two runs
    with the same seed are identical; an empty `adapter` none.
    """
    ckpt = None if checkpoint is None or str(checkpoint) in ("", "none") else checkpoint
    try:
        if ckpt is not None:
            return build_model(name, ckpt, device=device, dtype=dtype, adapter=adapter or None, tool=tool)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build_model(name, None, device="cpu", dtype=dtype, adapter=adapter or None, tool=tool)
        bias_random_camera_head(model)
        bias_random_point_heads(model)
        return model.to(resolve_device(device)).eval()
    except Exception as exc:  # CheckpointError, UnknownModelError, AdapterError, CUDA errors, ...
        raise ModelLoadError(
            f"cannot load model {name!r} (checkpoint {checkpoint!r}, adapter {adapter!r}, device {str(device)!r}): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
