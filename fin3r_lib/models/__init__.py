"""Backbones behind one interface (`ReconstructionModel`) and one loader (`build_model`, `load_model(ModelOptions)`)."""

from fin3r_lib.model_options import ModelOptions
from fin3r_lib.models.base import PREDICTION_KEYS, ReconstructionModel, Stream, check_rgb_images
from fin3r_lib.models.grid import GridMapping
from fin3r_lib.models.loader import build_model, load_model, resolve_device
from fin3r_lib.models.reconstruction import FrameResult, Reconstruction
from fin3r_lib.models.registry import list_models, model_entry, register_model

__all__ = [
    "PREDICTION_KEYS",
    "FrameResult",
    "GridMapping",
    "ModelOptions",
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
