"""DUSt3R: pairwise 3D reconstruction (two views -> point maps in the first view's frame), released files unchanged.

Variants: `dust3r-512-dpt` (`DUSt3R_ViTLarge_BaseDecoder_512_dpt.pth`), `dust3r-512-linear`
(`DUSt3R_ViTLarge_BaseDecoder_512_linear.pth`), `dust3r-224-linear`
(`DUSt3R_ViTLarge_BaseDecoder_224_linear.pth`), `dust3r-tiny` (random weights, tests and benchmarks).
`checkpoint default` is `model.safetensors` of the Hugging Face repo `naver/<that name>`; a local
`.pth` from NAVER's download page loads too (its `model` entry); both strictly.
Weights: CC BY-NC-SA 4.0 (non-commercial). MASt3R is in fin3r_lib.models.mast3r.

Use: `build_model("dust3r-512-dpt", ckpt).predict([rgb])` (the pair (I, I)), or
`predict_pair(image, other)` for one pair; sessions use the pairwise kind (each frame with the last keyframe).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fin3r_lib.lazy_exports import lazy_exports
from fin3r_lib.models.dust3r.config import (
    DUST3R_224_LINEAR,
    DUST3R_512_DPT,
    DUST3R_512_LINEAR,
    DUST3R_TINY,
    DUSt3RConfig,
)
from fin3r_lib.models.registry import register_model

if TYPE_CHECKING:
    from fin3r_lib.models.dust3r.model import DUSt3R

_MODEL = "fin3r_lib.models.dust3r.model"
__getattr__, __dir__ = lazy_exports(__name__, {"DUSt3R": _MODEL, "PairResult": _MODEL})
__all__ = ["DUSt3R", "DUSt3RConfig", "PairResult"]


def _dust3r(config: DUSt3RConfig) -> DUSt3R:
    from fin3r_lib.models.dust3r.model import DUSt3R  # the model code (torch) only when a model is built

    return DUSt3R(config)


@register_model(
    "dust3r-512-dpt",
    description="DUSt3R 512 px, DPT heads (DUSt3R_ViTLarge_BaseDecoder_512_dpt)",
    hf_repo="naver/DUSt3R_ViTLarge_BaseDecoder_512_dpt",
    hf_filename="model.safetensors",
)
def _dust3r_512_dpt() -> DUSt3R:
    return _dust3r(DUST3R_512_DPT)


@register_model(
    "dust3r-512-linear",
    description="DUSt3R 512 px, linear heads (DUSt3R_ViTLarge_BaseDecoder_512_linear)",
    hf_repo="naver/DUSt3R_ViTLarge_BaseDecoder_512_linear",
    hf_filename="model.safetensors",
)
def _dust3r_512_linear() -> DUSt3R:
    return _dust3r(DUST3R_512_LINEAR)


@register_model(
    "dust3r-224-linear",
    description="DUSt3R 224 px, linear heads (DUSt3R_ViTLarge_BaseDecoder_224_linear)",
    hf_repo="naver/DUSt3R_ViTLarge_BaseDecoder_224_linear",
    hf_filename="model.safetensors",
)
def _dust3r_224_linear() -> DUSt3R:
    return _dust3r(DUST3R_224_LINEAR)


@register_model("dust3r-tiny", description="tiny DUSt3R with random weights, for tests and benchmarks")
def _dust3r_tiny() -> DUSt3R:
    return _dust3r(DUST3R_TINY)
