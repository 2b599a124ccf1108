"""Hyper-parameters of a CUT3R variant (the released 512-DPT and 224-linear models, and a tiny test model)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fin3r_lib.models.croco import CroCoConfig


@dataclass(frozen=True)
class CUT3RConfig(CroCoConfig):
    """Shapes and switches of one CUT3R variant; defaults are the released `cut3r_512_dpt_4_64.pth`."""

    ray_enc_depth: int = 2
    #: heads of the ray-map encoder blocks: the reference fixes 16 whatever the encoder's own head count
    ray_enc_heads: int = 16
    state_dec_heads: int = 16  # head dim 48 in the released models
    #: the reference's CroCo encoder casts q and k to fp16 before RoPE, even in fp32 runs; True reproduces it
    rope_in_fp16: bool = True
    state_size: int = 768
    mem_size: int = 256
    head: Literal["dpt", "linear"] = "dpt"

    @property
    def state_width(self) -> int:
        """Width of the 2D grid of state-token positions (token i sits at (i // width, i % width))."""
        width = int(self.state_size**0.5)
        return width + 1 if width % 2 == 1 else width


CUT3R_512_DPT = CUT3RConfig()
CUT3R_224_LINEAR = CUT3RConfig(head="linear", image_size=224, square_crop=True)
#: a model of ~0.7 M parameters with the full structure, for tests and benchmarks on a CPU
CUT3R_TINY = CUT3RConfig(
    enc_dim=32,
    enc_depth=2,
    enc_heads=2,
    dec_dim=32,
    dec_depth=2,
    dec_heads=2,
    state_dec_heads=2,
    ray_enc_heads=2,
    state_size=16,
    mem_size=8,
    dpt_layer_dims=(4, 8, 16, 32),
    dpt_features=16,
    dpt_last_dim=8,
    image_size=64,
)
