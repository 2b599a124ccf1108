"""VGGT behind the common `ReconstructionModel` interface.

`forward` runs the aggregator (on CUDA under autocast: bf16 where supported, else fp16), keeping
only the decoder layers the heads read (`keep_layers`, by default `config.head_layers`), then the
camera, depth and point heads in fp32, the DPT heads over frames in chunks. `heads` limits a call to
some of the heads (the session's ("depth", "camera") skips the point head); the track head runs only
through `track_head` itself, never in `forward`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch

from fin3r_lib.errors import InputError
from fin3r_lib.models.base import ReconstructionModel
from fin3r_lib.models.grid import GridMapping
from fin3r_lib.models.token_cache import EncoderTokenCache
from fin3r_lib.models.vggt.aggregator import Aggregator
from fin3r_lib.models.vggt.camera_head import CameraHead
from fin3r_lib.models.vggt.config import VGGTConfig
from fin3r_lib.models.vggt.dpt_head import DPTHead
from fin3r_lib.models.vggt.pose_encoding import extrinsics_to_cam_to_world, pose_encoding_to_extri_intri
from fin3r_lib.models.vggt.preprocess import preprocess_images
from fin3r_lib.models.vggt.track_head import TrackHead


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The aggregator's autocast dtype on `device`: bf16 on GPUs of compute capability >= 8, else fp16;
    None (no autocast) off CUDA."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.get_device_capability(device)[0] >= 8 else torch.float16


class VGGT(ReconstructionModel):
    """Visual Geometry Grounded Transformer (windowed: all frames of a call are reconstructed jointly)."""

    relative_scale = True
    encoder_blocks_path = "aggregator.patch_embed.blocks"
    selectable_heads = ("depth", "camera", "points")
    caches_encoder_tokens = True

    def __init__(self, config: VGGTConfig) -> None:
        super().__init__()
        self.config = config
        dim = 2 * config.embed_dim
        self.aggregator = Aggregator(config)
        self.camera_head = CameraHead(dim, config.camera_trunk_depth, config.num_heads, config.mlp_ratio)
        dpt = {"patch_size": config.patch_size, "out_channels": config.dpt_out_channels}
        self.point_head = DPTHead(
            dim, config.dpt_layers, output_dim=4, activation="inv_log", features=config.dpt_features, **dpt
        )
        self.depth_head = DPTHead(
            dim, config.dpt_layers, output_dim=2, activation="exp", features=config.dpt_features, **dpt
        )
        if config.track_head:
            self.track_head = TrackHead(
                dim,
                config.dpt_layers,
                features=config.track_features,
                corr_levels=config.track_corr_levels,
                corr_radius=config.track_corr_radius,
                hidden=config.track_hidden,
                heads=config.track_heads,
                depth=config.track_depth,
                virtual=config.track_virtual_tokens,
                **dpt,
            )
        #: a release checkpoint's track head is dropped (and logged) when this model has none
        self.checkpoint_drop_prefixes: tuple[str, ...] = () if config.track_head else ("track_head.",)
        #: decoder layers kept in memory during `forward`; None keeps all (same outputs, more memory)
        self.keep_layers: tuple[int, ...] | None = config.head_layers
        #: frames per chunk in the DPT heads (None: all at once); outputs do not depend on it
        self.frames_chunk_size: int | None = config.frames_chunk_size

    def prepare(self, images: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[GridMapping]]:
        """RGB uint8 images -> ([1, S, 3, Hm, Wm] in [0, 1] on the model's device, mappings)."""
        cfg = self.config
        tensor, mappings = preprocess_images(images, cfg.image_size, cfg.patch_size, cfg.preprocess_mode)
        return tensor[None].to(self.device), mappings

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Model-grid images [B, S, 3, H, W] -> encoder patch tokens [B*S, N, C]."""
        return self.aggregator.encode(self._check(images))

    def _check(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() == 4:
            images = images[None]
        p = self.config.patch_size
        if images.dim() != 5 or images.shape[2] != 3 or images.shape[-1] % p or images.shape[-2] % p:
            raise InputError(
                f"VGGT: expected images [B, S, 3, H, W] (or [S, 3, H, W]) with H and W multiples of {p}, "
                f"got shape {tuple(images.shape)}"
            )
        return images

    def forward(
        self,
        images: torch.Tensor,
        heads: Sequence[str] | None = None,
        token_cache: EncoderTokenCache | None = None,
        frame_keys: Sequence[bytes] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Images [B, S, 3, H, W] (or [S, 3, H, W]) in [0, 1] -> predictions on the model grid.

        Keys: PREDICTION_KEYS, plus `pose_enc` [B, S, 9] (last iteration) and `pose_enc_iters`
        [iterations, B, S, 9] (every iteration, for the camera loss). `heads` (None: all) keeps only
        the keys of those heads: "depth" (depth, depth_conf), "camera" (cam_to_world, intrinsics,
        pose_enc, pose_enc_iters), "points" (world_points, world_points_conf).
        """
        wanted = self.check_heads(heads)
        images = self._check(images)
        hw = (images.shape[-2], images.shape[-1])
        amp = autocast_dtype(images.device)
        ctx = torch.autocast("cuda", dtype=amp) if amp is not None else contextlib.nullcontext()
        with ctx:
            tokens = self.aggregator(images, self.keep_layers, token_cache, frame_keys)
        heads_ctx = torch.autocast("cuda", enabled=False) if amp is not None else contextlib.nullcontext()
        with heads_ctx:
            head_dtype = self.depth_head.norm.weight.dtype  # fp32 unless the model was built in another dtype
            tokens = {k: v.to(head_dtype) for k, v in tokens.items()}
            out: dict[str, torch.Tensor] = {}
            if "camera" in wanted:
                out.update(self._camera(tokens, hw))
            start = self.aggregator.patch_start_idx
            if "depth" in wanted:
                depth, out["depth_conf"] = self.depth_head(tokens, hw, start, self.frames_chunk_size)
                out["depth"] = depth[..., 0]
            if "points" in wanted:
                points = self.point_head(tokens, hw, start, self.frames_chunk_size)
                out["world_points"], out["world_points_conf"] = points
        return out

    def _camera(self, tokens: dict[int, torch.Tensor], hw: tuple[int, int]) -> dict[str, torch.Tensor]:
        """The camera head on the last layer's camera tokens -> poses, intrinsics and pose encodings."""
        cfg = self.config
        pose_iters = self.camera_head(tokens[cfg.depth - 1][:, :, 0], cfg.camera_iterations)
        extrinsics, intrinsics = pose_encoding_to_extri_intri(pose_iters[-1], hw)
        return {
            "cam_to_world": extrinsics_to_cam_to_world(extrinsics),
            "intrinsics": intrinsics,
            "pose_enc": pose_iters[-1],
            "pose_enc_iters": torch.stack(pose_iters),
        }
