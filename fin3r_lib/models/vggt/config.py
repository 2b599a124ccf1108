"""Configuration of a VGGT variant: every width, depth and switch the modules are built from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VGGTConfig:
    """Hyper-parameters of one VGGT variant (defaults: the released VGGT-1B)."""

    #: preprocessing target (crop mode: width; pad mode: long side) and the learned pos_embed grid
    image_size: int = 518
    patch_size: int = 14
    #: width of the encoder and of the frame/global blocks (the heads see 2 * embed_dim)
    embed_dim: int = 1024
    encoder_depth: int = 24
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_register_tokens: int = 4
    rope_base: float = 100.0
    #: camera head: trunk blocks and refinement iterations
    camera_trunk_depth: int = 4
    camera_iterations: int = 4
    #: DPT heads: decoder layers read (finest first), fused width, per-level widths
    dpt_layers: tuple[int, ...] = (4, 11, 17, 23)
    dpt_features: int = 256
    dpt_out_channels: tuple[int, ...] = (256, 512, 1024, 1024)
    #: frames per chunk when running the DPT heads (no effect on outputs; the reference uses 8, a
    #: smaller chunk keeps the heads' full-resolution maps from dominating peak memory)
    frames_chunk_size: int = 2
    #: build the track head's modules (the full release checkpoint holds them)
    track_head: bool = True
    track_features: int = 128
    track_corr_levels: int = 7
    track_corr_radius: int = 4
    track_hidden: int = 384
    track_heads: int = 8
    track_depth: int = 6
    track_virtual_tokens: int = 64
    #: preprocessing mode: "crop" (width = image_size) or "pad" (long side = image_size, white padding)
    preprocess_mode: str = "crop"

    @property
    def head_layers(self) -> tuple[int, ...]:
        """Decoder layers some head reads: the DPT layers and the last one (camera head)."""
        return tuple(sorted({*self.dpt_layers, self.depth - 1}))


#: the released VGGT-1B (and VGGT-1B-Commercial, same architecture)
VGGT_1B = VGGTConfig()

#: same classes, small widths and depths: CPU tests and benchmarks in seconds (random weights only)
VGGT_TINY = VGGTConfig(
    image_size=224,
    embed_dim=64,
    encoder_depth=2,
    depth=4,
    num_heads=4,
    camera_trunk_depth=1,
    dpt_layers=(0, 1, 2, 3),
    dpt_features=32,
    dpt_out_channels=(16, 32, 64, 64),
    track_head=False,
)
