"""MoGe (monocular geometry) models, checkpoint-exact with `microsoft/MoGe`: the Fin3R teacher.

MoGe-1 (`moge-vitl`) predicts an affine-invariant point map, MoGe-2 (`moge-2-*`) a metric one; both
a validity mask. Released `model.pt` files load unchanged (`load_release`); `infer` is MoGe's own
inference (focal and z-shift recovery, re-projection, metric scale). Used by
`fin3r_lib.training.teachers.moge`; not a reconstruction backbone of the runner.
"""

from fin3r_lib.models.moge.infer import MoGeResult, infer, tokens_for_level
from fin3r_lib.models.moge.release import VARIANTS, build_moge, load_release, resolve_weights, seeded_model, variant

__all__ = [
    "VARIANTS",
    "MoGeResult",
    "build_moge",
    "infer",
    "load_release",
    "resolve_weights",
    "seeded_model",
    "tokens_for_level",
    "variant",
]
