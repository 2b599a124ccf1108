"""Hyper-parameters of the DUSt3R and MASt3R variants (released ViT-Large / Base-decoder models, tiny test models)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fin3r_lib.models.croco import CroCoConfig


@dataclass(frozen=True)
class DUSt3RConfig(CroCoConfig):
    """One DUSt3R/MASt3R variant; defaults are `DUSt3R_ViTLarge_BaseDecoder_512_dpt`.

    `head`: "dpt" or "linear" (DUSt3R), "catmlp_dpt" (MASt3R: DPT points plus an MLP on the
    concatenated encoder and decoder tokens for `desc_dim`-dimensional descriptors and their confidence).
    """

    head: Literal["dpt", "linear", "catmlp_dpt"] = "dpt"
    desc_dim: int = 24
    desc_mlp_ratio: float = 4.0


DUST3R_512_DPT = DUSt3RConfig()
DUST3R_512_LINEAR = DUSt3RConfig(head="linear")
DUST3R_224_LINEAR = DUSt3RConfig(head="linear", image_size=224, square_crop=True)
MAST3R_512 = DUSt3RConfig(head="catmlp_dpt")
_TINY = {
    "enc_dim": 32,
    "enc_depth": 2,
    "enc_heads": 2,
    "dec_dim": 32,
    "dec_depth": 2,
    "dec_heads": 2,
    "dpt_layer_dims": (4, 8, 16, 32),
    "dpt_features": 16,
    "dpt_last_dim": 8,
    "image_size": 64,
}
#: models of well under 1 M parameters with the full structure, for tests and benchmarks on a CPU
DUST3R_TINY = DUSt3RConfig(**_TINY)
MAST3R_TINY = DUSt3RConfig(head="catmlp_dpt", desc_dim=8, **_TINY)
