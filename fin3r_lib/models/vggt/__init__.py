"""VGGT (Visual Geometry Grounded Transformer) variants, registered with the model factory.

- `vggt-1b`: the released facebook/VGGT-1B (weights CC-BY-NC-4.0), 1,256,537,516 parameters.
- `vggt-1b-commercial`: facebook/VGGT-1B-Commercial (gated, VGGT License v1), same architecture.
- `vggt-tiny`: the same classes at small widths/depths (embed 64, 2 encoder blocks, 4 decoder
  layers, DPT features 32, no track head, 224 px preprocessing) for CPU tests and benchmarks; random
  weights only, there is no released checkpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fin3r_lib.lazy_exports import lazy_exports
from fin3r_lib.models.registry import register_model
from fin3r_lib.models.vggt.config import VGGT_1B, VGGT_TINY, VGGTConfig

if TYPE_CHECKING:
    from fin3r_lib.models.vggt.model import VGGT

__getattr__, __dir__ = lazy_exports(__name__, {"VGGT": "fin3r_lib.models.vggt.model"})
__all__ = ["VGGT", "VGGTConfig"]


def _vggt(config: VGGTConfig) -> VGGT:
    from fin3r_lib.models.vggt.model import VGGT  # the model code (torch) only when a model is built

    return VGGT(config)


@register_model(
    "vggt-1b",
    description="VGGT-1B (facebook/VGGT-1B, CC-BY-NC-4.0)",
    hf_repo="facebook/VGGT-1B",
    hf_filename="model.safetensors",
)
def vggt_1b() -> VGGT:
    """The released VGGT-1B architecture."""
    return _vggt(VGGT_1B)


@register_model(
    "vggt-1b-commercial",
    description="VGGT-1B-Commercial (facebook/VGGT-1B-Commercial, gated, VGGT License v1)",
    hf_repo="facebook/VGGT-1B-Commercial",
    hf_filename="model.pt",
)
def vggt_1b_commercial() -> VGGT:
    """The commercially licensed VGGT-1B weights: same architecture as `vggt-1b`."""
    return _vggt(VGGT_1B)


@register_model("vggt-tiny", description="VGGT classes at tiny widths (tests and CPU benchmarks, random weights)")
def vggt_tiny() -> VGGT:
    """Small VGGT for CPU tests and benchmarks."""
    return _vggt(VGGT_TINY)
