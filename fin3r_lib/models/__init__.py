"""Backbones behind one interface (`ReconstructionModel`) and one loader (`build_model`, `load_model(ModelOptions)`)."""

from fin3r_lib.lazy_exports import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ModelOptions": "fin3r_lib.model_options",
        "PREDICTION_KEYS": "fin3r_lib.models.base",
        "ReconstructionModel": "fin3r_lib.models.base",
        "Stream": "fin3r_lib.models.base",
        "check_rgb_images": "fin3r_lib.models.base",
        "GridMapping": "fin3r_lib.models.grid",
        "build_model": "fin3r_lib.models.loader",
        "load_model": "fin3r_lib.models.loader",
        "resolve_device": "fin3r_lib.models.loader",
        "FrameResult": "fin3r_lib.models.reconstruction",
        "Reconstruction": "fin3r_lib.models.reconstruction",
        "list_models": "fin3r_lib.models.registry",
        "model_entry": "fin3r_lib.models.registry",
        "register_model": "fin3r_lib.models.registry",
    },
)
