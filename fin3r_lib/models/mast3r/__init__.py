"""MASt3R: DUSt3R with metric point maps and a local-descriptor head, released file unchanged.

Variants: `mast3r-512` (`MASt3R_ViTLarge_BaseDecoder_512_catmlpdpt_metric.pth`, or `model.safetensors`
of the Hugging Face repo `naver/MASt3R_ViTLarge_BaseDecoder_512_catmlpdpt_metric`, its `default`) and
`mast3r-tiny` (random weights). Same pairwise model as DUSt3R (fin3r_lib.models.dust3r) with the `catmlp_dpt`
head: `forward_pair` also returns `desc` [B, H, W, 24] (unit norm) and `desc_conf` per view; nothing
downstream uses them. Weights: CC BY-NC-SA 4.0 (non-commercial).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fin3r_lib.lazy_exports import lazy_exports
from fin3r_lib.models.dust3r.config import MAST3R_512, MAST3R_TINY, DUSt3RConfig
from fin3r_lib.models.registry import register_model

if TYPE_CHECKING:
    from fin3r_lib.models.mast3r.model import MASt3R

__getattr__, __dir__ = lazy_exports(__name__, {"MASt3R": "fin3r_lib.models.mast3r.model"})
__all__ = ["MASt3R"]


def _mast3r(config: DUSt3RConfig) -> MASt3R:
    from fin3r_lib.models.mast3r.model import MASt3R  # the model code (torch) only when a model is built

    return MASt3R(config)


@register_model(
    "mast3r-512",
    description="MASt3R 512 px, metric, descriptors (MASt3R_ViTLarge_BaseDecoder_512_catmlpdpt_metric)",
    hf_repo="naver/MASt3R_ViTLarge_BaseDecoder_512_catmlpdpt_metric",
    hf_filename="model.safetensors",
)
def _mast3r_512() -> MASt3R:
    return _mast3r(MAST3R_512)


@register_model("mast3r-tiny", description="tiny MASt3R with random weights, for tests and benchmarks")
def _mast3r_tiny() -> MASt3R:
    return _mast3r(MAST3R_TINY)
