"""Hyper-parameters shared by the CroCo-based backbones (CUT3R, DUSt3R, MASt3R).

The three families use the same CroCo ViT encoder, CroCo decoder blocks, 2D RoPE and DPT/linear
heads (fin3r_lib.models.cut3r.encoder, .decoder, .heads); those parts read their shapes from a
`CroCoConfig`, which each family's configuration extends.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CroCoConfig:
    """Encoder, decoder and head shapes; defaults are the released ViT-Large encoder / Base decoder at 512 px."""

    patch_size: int = 16
    enc_dim: int = 1024
    enc_depth: int = 24
    enc_heads: int = 16
    dec_dim: int = 768
    dec_depth: int = 12
    dec_heads: int = 12
    mlp_ratio: float = 4.0
    norm_eps: float = 1e-6
    rope_base: float = 100.0
    #: CUT3R's reference casts q and k to fp16 before RoPE, even in fp32 runs; True reproduces it
    rope_in_fp16: bool = False
    head: str = "dpt"
    dpt_layer_dims: tuple[int, int, int, int] = (96, 192, 384, 768)
    dpt_features: int = 256
    dpt_last_dim: int = 128
    #: preprocessing: long side of the resized image; `square_crop` (224 models): short side to this, square crop
    image_size: int = 512
    square_crop: bool = False

    @property
    def head_layers(self) -> tuple[int, int, int]:
        """Decoder outputs (1-based, after that many blocks) the heads read besides the encoder features."""
        return self.dec_depth * 2 // 4, self.dec_depth * 3 // 4, self.dec_depth
