"""Backbones behind one interface (`ReconstructionModel`) and one factory (`build_model`)."""

from fin3r_lib.models.base import PREDICTION_KEYS, ReconstructionModel, Stream, check_rgb_images
from fin3r_lib.models.grid import GridMapping
from fin3r_lib.models.reconstruction import FrameResult, Reconstruction
from fin3r_lib.models.registry import (
    build_model,
    list_models,
    load_model,
    model_entry,
    register_model,
    resolve_device,
)

__all__ = [
    "PREDICTION_KEYS",
    "FrameResult",
    "GridMapping",
    "Reconstruction",
    "ReconstructionModel",
    "Stream",
    "build_model",
    "check_rgb_images",
    "list_models",
    "load_model",
    "model_entry",
    "register_model",
    "resolve_device",
]
