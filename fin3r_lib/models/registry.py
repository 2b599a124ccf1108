"""The model registry: variant names -> entries (builder, description, where the weights are), nothing else.

Each model family registers its variants (e.g. `vggt-1b`, `vggt-tiny`) with `register_model` in its
own module; `MODEL_FAMILIES` lists those modules, imported on first use. This module imports no other
part of fin3r_lib but its errors: building and loading (checkpoint, adapter, device, precision) is
`fin3r_lib.models.loader`, above it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fin3r_lib.errors import UnknownModelError

if TYPE_CHECKING:
    from fin3r_lib.models.base import ReconstructionModel

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
