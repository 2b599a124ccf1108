"""DUSt3R (and MASt3R): a pairwise backbone. Two views -> both point maps in the first view's camera frame.

Both images go through the same CroCo ViT encoder; two decoders (`dec_blocks` for view 1,
`dec_blocks2` for view 2) exchange information by cross-attention in every layer; one head per view
turns the decoder tokens into a point map and a confidence (`pts3d` of view 1 in its own frame,
`pts3d_in_other_view` of view 2 in view 1's frame). Single-view prediction runs the pair (I, I), as
the reference does. Intrinsics come from the self-view points (Weiszfeld focal, principal point at
the centre); poses from point maps (see pose.py). Inference runs in fp32, as the reference's.
Portrait images are processed as they are (the reference's `PatchEmbedDust3R`, `landscape_only=False`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from fin3r_lib.models.base import ReconstructionModel, predictions_to_reconstruction
from fin3r_lib.models.cut3r.decoder import DecoderBlock
from fin3r_lib.models.cut3r.encoder import PatchEmbed, encoder_blocks, run_encoder
from fin3r_lib.models.cut3r.focal import intrinsics_from_points
from fin3r_lib.models.cut3r.preprocess import CroCoImageInput
from fin3r_lib.models.dust3r.config import DUSt3RConfig
from fin3r_lib.models.dust3r.heads import make_head
from fin3r_lib.models.dust3r.pose import poses_from_pairs
from fin3r_lib.models.layers import RoPE2D
from fin3r_lib.models.reconstruction import FrameResult

Outputs = dict[str, torch.Tensor]


@dataclass
class PairResult:
    """One pair (image, other) on the input pixel grids, in `image`'s camera frame."""

    frame: FrameResult  # `image`: depth, intrinsics, its own points; identity pose
    other_points: np.ndarray  # (H, W, 3) float32 points of `other` in `image`'s camera frame
    other_conf: np.ndarray  # (H, W) float32 their confidence (0 where outside the model grid)


class DUSt3R(CroCoImageInput, ReconstructionModel):
    """DUSt3R with the released checkpoints' parameter names (see `test/data/dust3r_*.keys.tsv`)."""

    relative_scale: ClassVar[bool] = True
    pairwise: ClassVar[bool] = True
    encoder_blocks_path = "enc_blocks"

    def __init__(self, cfg: DUSt3RConfig) -> None:
        super().__init__()
        self.cfg = cfg
        rope = RoPE2D(cfg.rope_base)
        enc, dec = cfg.enc_dim, cfg.dec_dim
        #: CroCo's pretraining mask token: in the released files, unused at inference
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec))
        self.patch_embed = PatchEmbed(3, enc, cfg.patch_size)
        self.enc_blocks = encoder_blocks(cfg, cfg.enc_depth, rope, cfg.rope_in_fp16)
        self.enc_norm = nn.LayerNorm(enc, eps=cfg.norm_eps)
        self.decoder_embed = nn.Linear(enc, dec)
        self.dec_blocks = self._decoder(cfg, rope)
        self.dec_blocks2 = self._decoder(cfg, rope)
        self.dec_norm = nn.LayerNorm(dec, eps=cfg.norm_eps)
        self.downstream_head1 = make_head(cfg)
        self.downstream_head2 = make_head(cfg)

    @staticmethod
    def _decoder(cfg: DUSt3RConfig, rope: RoPE2D) -> nn.ModuleList:
        return nn.ModuleList(
            DecoderBlock(cfg.dec_dim, cfg.dec_heads, cfg.mlp_ratio, cfg.norm_eps, rope) for _ in range(cfg.dec_depth)
        )

    # ----- tensors -----------------------------------------------------------------------------
    def _run_encoder(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return run_encoder(self.patch_embed, self.enc_blocks, self.enc_norm, (images - 0.5) / 0.5)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Encoder tokens [B*S, N, enc_dim] of model-grid images [B, S, 3, H, W] in [0, 1]."""
        return self._run_encoder(images.flatten(0, 1))[0]

    def _decode(
        self, f1: torch.Tensor, p1: torch.Tensor, f2: torch.Tensor, p2: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Both decoders in lockstep -> per view [encoder tokens, output at 1/2, at 3/4, final normalized]."""
        keep = self.cfg.head_layers[:-1]
        kept: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        x1, x2 = self.decoder_embed(f1), self.decoder_embed(f2)
        for depth, (blk1, blk2) in enumerate(zip(self.dec_blocks, self.dec_blocks2, strict=True), 1):
            x1, x2 = blk1(x1, x2, p1, p2), blk2(x2, x1, p2, p1)
            if depth in keep:
                kept[depth] = (x1, x2)
        return (
            [f1, *(kept[d][0] for d in keep), self.dec_norm(x1)],
            [f2, *(kept[d][1] for d in keep), self.dec_norm(x2)],
        )

    def forward_pair(self, view1: torch.Tensor, view2: torch.Tensor) -> tuple[Outputs, Outputs]:
        """Pairs of model-grid images [B, 3, H, W] in [0, 1] -> the reference's (res1, res2).

        res1: `pts3d` [B, H1, W1, 3] of view 1 in its own frame, `conf`; res2: `pts3d_in_other_view`
        [B, H2, W2, 3] of view 2 in view 1's frame, `conf` (MASt3R also `desc`, `desc_conf`).
        """
        if view1.shape[-2:] == view2.shape[-2:]:  # one encoder batch, as the reference
            feat, pos = self._run_encoder(torch.cat([view1, view2]))
            (f1, f2), (p1, p2) = feat.chunk(2), pos.chunk(2)
        else:
            (f1, p1), (f2, p2) = self._run_encoder(view1), self._run_encoder(view2)
        dec1, dec2 = self._decode(f1, p1, f2, p2)
        res1 = self.downstream_head1(dec1, tuple(view1.shape[-2:]))
        res2 = self.downstream_head2(dec2, tuple(view2.shape[-2:]))
        res2["pts3d_in_other_view"] = res2.pop("pts3d")
        return res1, res2

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Model-grid frames [B, S, 3, H, W] in [0, 1] -> PREDICTION_KEYS in frame 0's camera frame.

        Runs the pairs (I_s, I_0) for every s (S = 1: the pair (I, I)) as one batch. Each frame's depth
        and intrinsics come from its self-view points; frames s > 0 are placed in frame 0's camera by
        the similarity between frame 0's points seen from s and frame 0's own points (pose.py); their
        depth and points are scaled into frame 0's pair.
        """
        b, s = images.shape[:2]
        first = images[:, :1].expand(-1, s, -1, -1, -1)
        res1, res2 = self.forward_pair(images.flatten(0, 1), first.flatten(0, 1))
        own = res1["pts3d"].unflatten(0, (b, s))
        own_conf = res1["conf"].unflatten(0, (b, s))
        sim3 = poses_from_pairs(
            own, own_conf, res2["pts3d_in_other_view"].unflatten(0, (b, s)), res2["conf"].unflatten(0, (b, s))
        )
        scale = torch.linalg.det(sim3[..., :3, :3]).clamp(min=0).pow(1 / 3)
        cam_to_world = sim3.clone()
        cam_to_world[..., :3, :3] = sim3[..., :3, :3] / scale[..., None, None]
        world = own @ sim3[..., None, :3, :3].transpose(-1, -2) + sim3[..., None, None, :3, 3]
        return {
            "depth": own[..., 2] * scale[..., None, None],
            "depth_conf": own_conf,
            "world_points": world,
            "world_points_conf": own_conf,
            "cam_to_world": cam_to_world,
            "intrinsics": intrinsics_from_points(own.flatten(0, 1)).unflatten(0, (b, s)),
        }

    # ----- arrays --------------------------------------------------------------------------------
    def predict_pair(self, image: np.ndarray, other: np.ndarray) -> PairResult:
        """The pair (image, other) of same-sized RGB uint8 images -> `image`'s geometry and `other`'s points
        in `image`'s camera frame, on the input pixel grid (one forward pass)."""
        tensor, (mapping, other_mapping) = self.prepare([image, other])
        with torch.inference_mode():
            res1, res2 = self.forward_pair(tensor[:, 0], tensor[:, 1])
            own = res1["pts3d"]
            pred = {
                "depth": own[..., 2],
                "depth_conf": res1["conf"],
                "world_points": own,
                "world_points_conf": res1["conf"],
                "cam_to_world": torch.eye(4, dtype=own.dtype, device=own.device)[None],
                "intrinsics": intrinsics_from_points(own),
            }
            frame = predictions_to_reconstruction(
                {k: v[:, None] for k, v in pred.items()}, [mapping], self.relative_scale
            )
            maps = torch.cat([res2["pts3d_in_other_view"][0].permute(2, 0, 1), res2["conf"]], dim=0)[None].float()
            on_input = other_mapping.to_input(maps)[0].cpu().numpy()
        return PairResult(
            frame=frame.frame(0),
            other_points=np.moveaxis(on_input[:3], 0, -1).astype(np.float32),
            other_conf=np.nan_to_num(on_input[3], nan=0.0).astype(np.float32),
        )
