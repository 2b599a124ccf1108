"""Building blocks shared by the backbones (ViT blocks, 2D RoPE), each a few dozen lines."""

from fin3r_lib.models.layers.attention import Attention
from fin3r_lib.models.layers.block import Block
from fin3r_lib.models.layers.layer_scale import LayerScale
from fin3r_lib.models.layers.mlp import Mlp
from fin3r_lib.models.layers.rope import RoPE2D, grid_positions

__all__ = ["Attention", "Block", "LayerScale", "Mlp", "RoPE2D", "grid_positions"]
