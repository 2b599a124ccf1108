"""CUT3R: streaming 3D reconstruction with a recurrent state, loading the released checkpoints unchanged.

Variants: `cut3r-512-dpt` (`cut3r_512_dpt_4_64.pth`), `cut3r-224-linear` (`cut3r_224_linear_4.pth`),
`cut3r-tiny` (random weights, tests and benchmarks). The releases are not on a stable Hugging Face
repo: pass the local `.pth` file as the checkpoint. Its `model` entry loads unchanged (strict; a
`module.` prefix is stripped). Its pickled training `args` (omegaconf objects) are never imported:
`fin3r_lib.models.checkpoint` reads the file with an unpickler that turns every non-torch class into
an inert placeholder, so omegaconf is not needed and no foreign code runs (test_cut3r_checkpoint.py
checks this with a class whose module no longer exists).

Use: `stream = build_model("cut3r-512-dpt", "cut3r_512_dpt_4_64.pth", device="cuda").new_stream()`,
then `stream.step(rgb_uint8)` per frame and `stream.reset()` to start over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fin3r_lib.lazy_exports import lazy_exports
from fin3r_lib.models.cut3r.config import CUT3R_224_LINEAR, CUT3R_512_DPT, CUT3R_TINY, CUT3RConfig
from fin3r_lib.models.registry import register_model

if TYPE_CHECKING:
    from fin3r_lib.models.cut3r.model import CUT3R

_MODEL = "fin3r_lib.models.cut3r.model"
__getattr__, __dir__ = lazy_exports(__name__, {"CUT3R": _MODEL, "CUT3RState": _MODEL, "CUT3RStream": _MODEL})
__all__ = ["CUT3R", "CUT3RConfig", "CUT3RState", "CUT3RStream"]


def _cut3r(config: CUT3RConfig) -> CUT3R:
    from fin3r_lib.models.cut3r.model import CUT3R  # the model code (torch) only when a model is built

    return CUT3R(config)


#: where the CUT3R authors publish their checkpoints (download links in the README, not on the Hub)
RELEASE_PAGE = "https://github.com/CUT3R/CUT3R (checkpoint links in its README)"


@register_model(
    "cut3r-512-dpt",
    description="CUT3R 512 px, DPT heads (cut3r_512_dpt_4_64.pth)",
    weights_source=RELEASE_PAGE,
    weights_file="cut3r_512_dpt_4_64.pth",
)
def _cut3r_512_dpt() -> CUT3R:
    return _cut3r(CUT3R_512_DPT)


@register_model(
    "cut3r-224-linear",
    description="CUT3R 224 px, linear heads (cut3r_224_linear_4.pth)",
    weights_source=RELEASE_PAGE,
    weights_file="cut3r_224_linear_4.pth",
)
def _cut3r_224_linear() -> CUT3R:
    return _cut3r(CUT3R_224_LINEAR)


@register_model("cut3r-tiny", description="tiny CUT3R with random weights, for tests and benchmarks")
def _cut3r_tiny() -> CUT3R:
    return _cut3r(CUT3R_TINY)
