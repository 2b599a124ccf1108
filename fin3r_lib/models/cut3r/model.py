"""CUT3R (continuous 3D perception with a recurrent state): the model and its stream object.

Each frame is encoded alone (CroCo ViT-L/16), then decoded jointly with a persistent state of
`state_size` tokens: in every decoder layer the state attends to the frame and the frame (with a
pose token in front) attends to the state, in parallel. The normalized final state is carried to the
next frame, and a local pose memory is written after each frame. Memory and time per frame therefore
do not grow with the sequence. Reference inference runs in fp32; `autocast_dtype` (set from the
`precision` option by the loader: fp16 / bf16) runs the encoder and decoder under autocast on any
device, the heads and the carried state stay fp32.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fin3r_lib.errors import InputError
from fin3r_lib.models.base import ReconstructionModel, check_rgb_images, predictions_to_reconstruction
from fin3r_lib.models.cut3r.config import CUT3RConfig
from fin3r_lib.models.cut3r.decoder import DecoderBlock
from fin3r_lib.models.cut3r.encoder import PatchEmbed, encoder_blocks, run_encoder
from fin3r_lib.models.cut3r.focal import intrinsics_from_points
from fin3r_lib.models.cut3r.heads import HEADS, DPTPts3dPose, LinearPts3dPose
from fin3r_lib.models.cut3r.pose import pose_encoding_to_cam_to_world, ray_map
from fin3r_lib.models.cut3r.pose_retriever import PoseRetriever
from fin3r_lib.models.cut3r.preprocess import CroCoImageInput
from fin3r_lib.models.layers import RoPE2D
from fin3r_lib.models.reconstruction import FrameResult


@dataclass(frozen=True)
class CUT3RState:
    """What CUT3R carries between frames: state tokens, pose memory, and how many frames it has seen."""

    tokens: torch.Tensor  # [B, state_size, dec_dim]
    memory: torch.Tensor  # [B, mem_size, 2 * dec_dim]
    frames: int = 0


class CUT3R(CroCoImageInput, ReconstructionModel):
    """CUT3R with the released checkpoints' parameter names (see `../shared/specs/cut3r_*.keys.tsv`)."""

    relative_scale = False
    streaming = True
    encoder_blocks_path = "enc_blocks"
    selectable_heads = HEADS

    def __init__(self, cfg: CUT3RConfig) -> None:
        super().__init__()
        self.cfg = cfg
        #: autocast dtype of encoder and decoder (None: fp32 as the reference's inference)
        self.autocast_dtype: torch.dtype | None = None
        rope = RoPE2D(cfg.rope_base)
        enc, dec = cfg.enc_dim, cfg.dec_dim
        self.pose_token = nn.Parameter(torch.randn(1, 1, dec) * 0.02)
        self.masked_img_token = nn.Parameter(torch.randn(1, enc) * 0.02)
        self.masked_ray_map_token = nn.Parameter(torch.randn(1, enc) * 0.02)
        self.patch_embed = PatchEmbed(3, enc, cfg.patch_size)
        self.enc_blocks = encoder_blocks(cfg, cfg.enc_depth, rope, cfg.rope_in_fp16)
        self.enc_norm = nn.LayerNorm(enc, eps=cfg.norm_eps)
        self.patch_embed_ray_map = PatchEmbed(6, enc, cfg.patch_size)
        self.enc_blocks_ray_map = encoder_blocks(cfg, cfg.ray_enc_depth, rope, False, cfg.ray_enc_heads)
        self.enc_norm_ray_map = nn.LayerNorm(enc, eps=cfg.norm_eps)
        self.decoder_embed = nn.Linear(enc, dec)
        self.dec_blocks = nn.ModuleList(
            DecoderBlock(dec, cfg.dec_heads, cfg.mlp_ratio, cfg.norm_eps, rope) for _ in range(cfg.dec_depth)
        )
        self.dec_norm = nn.LayerNorm(dec, eps=cfg.norm_eps)
        self.pose_retriever = PoseRetriever(cfg.mem_size, enc, dec, cfg.dec_heads, norm_eps=cfg.norm_eps)
        self.register_tokens = nn.Embedding(cfg.state_size, enc)
        self.decoder_embed_state = nn.Linear(enc, dec)
        self.dec_blocks_state = nn.ModuleList(
            DecoderBlock(dec, cfg.state_dec_heads, cfg.mlp_ratio, cfg.norm_eps, rope) for _ in range(cfg.dec_depth)
        )
        self.dec_norm_state = nn.LayerNorm(dec, eps=cfg.norm_eps)
        head_cls = DPTPts3dPose if cfg.head == "dpt" else LinearPts3dPose
        self.downstream_head = head_cls(cfg, rope)

    # ----- tensors -----------------------------------------------------------------------------
    def _autocast(self, device: torch.device) -> torch.autocast:
        enabled = self.autocast_dtype is not None and device.type != "meta"
        return torch.autocast(device.type, dtype=self.autocast_dtype or torch.bfloat16, enabled=enabled)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Encoder tokens [B*S, N, enc_dim] of model-grid images [B, S, 3, H, W] in [0, 1]."""
        flat = images.flatten(0, 1)
        with self._autocast(flat.device):
            return run_encoder(self.patch_embed, self.enc_blocks, self.enc_norm, (flat - 0.5) / 0.5)[0]

    def encode_ray_map(self, ray_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens and positions of 6-channel ray maps [B, 6, H, W] (origins and directions of unseen views)."""
        return run_encoder(self.patch_embed_ray_map, self.enc_blocks_ray_map, self.enc_norm_ray_map, ray_map)

    def initial_state(self, batch: int = 1) -> CUT3RState:
        """The state before any frame: embedded learned state tokens and the learned pose memory."""
        tokens = self.decoder_embed_state(self.register_tokens.weight)[None].expand(batch, -1, -1)
        return CUT3RState(tokens.clone(), self.pose_retriever.initial_memory(batch), 0)

    def state_positions(self, device: torch.device) -> torch.Tensor:
        """RoPE positions of the state tokens [state_size, 2]: token i at (i // width, i % width)."""
        i = torch.arange(self.cfg.state_size, device=device)
        return torch.stack([i // self.cfg.state_width, i % self.cfg.state_width], dim=-1)

    def _decode(
        self, state: torch.Tensor, feat: torch.Tensor, pos: torch.Tensor, pose_feat: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Paired decoding -> (next state tokens, [image tokens after the head layers], last normalized)."""
        b = feat.shape[0]
        img = torch.cat([pose_feat, self.decoder_embed(feat)], dim=1)
        pose_pos = torch.full((b, 1, 2), -1, dtype=pos.dtype, device=pos.device)
        img_pos = torch.cat([pose_pos, pos], dim=1)
        state_pos = self.state_positions(feat.device).expand(b, -1, -1)
        keep = self.cfg.head_layers[:-1]
        kept = {}
        for depth, (blk_state, blk_img) in enumerate(zip(self.dec_blocks_state, self.dec_blocks, strict=True), 1):
            state, img = blk_state(state, img, state_pos, img_pos), blk_img(img, state, img_pos, state_pos)
            if depth in keep:
                kept[depth] = img[:, 1:]
        return self.dec_norm_state(state), [*(kept[d] for d in keep), self.dec_norm(img)]

    def _recurrent_step(
        self,
        feat: torch.Tensor,
        pos: torch.Tensor,
        size: tuple[int, int],
        state: CUT3RState,
        first: bool,
        heads: Sequence[str] = HEADS,
    ) -> tuple[dict[str, torch.Tensor], CUT3RState]:
        """Encoder tokens of one view -> (outputs of `heads`, next state); the first frame uses the learned
        pose token."""
        image_feat = feat.mean(dim=1, keepdim=True)
        if first:
            pose_feat = self.pose_token.expand(feat.shape[0], -1, -1)
        else:
            pose_feat = self.pose_retriever.inquire(image_feat, state.memory)
        tokens, layers = self._decode(state.tokens, feat, pos, pose_feat)
        memory = self.pose_retriever.update(state.memory, image_feat, layers[-1][:, :1])
        with torch.autocast(feat.device.type, enabled=False):
            out = self.downstream_head([feat.float(), *(t.float() for t in layers)], pos, size, heads)
        return out, CUT3RState(tokens.float(), memory.float(), state.frames + 1)

    def step_tensor(
        self,
        image: torch.Tensor,
        state: CUT3RState,
        ray_map: torch.Tensor | None = None,
        heads: Sequence[str] | None = None,
    ) -> tuple[dict[str, torch.Tensor], CUT3RState]:
        """One frame [B, 3, H, W] in [0, 1] -> (head outputs, reference names; next state).

        `heads` (None: all of `HEADS`) limits the outputs computed; the next state does not depend on it.

        With `ray_map` [B, 6, H, W] (a known camera, see `pose.ray_map`) the view carries both inputs: its
        tokens are the image tokens plus the ray-map tokens at the image's positions (reference
        `_encode_views` for a view with img_mask and ray_mask set).
        """
        with self._autocast(image.device):
            feat, pos = run_encoder(self.patch_embed, self.enc_blocks, self.enc_norm, (image - 0.5) / 0.5)
            if ray_map is not None:
                feat = feat + self.encode_ray_map(ray_map)[0]
            size = (image.shape[-2], image.shape[-1])
            return self._recurrent_step(feat, pos, size, state, state.frames == 0, self.check_heads(heads))

    def query_ray_map(self, ray_map: torch.Tensor, state: CUT3RState) -> dict[str, torch.Tensor]:
        """Predict an unseen view given by its ray map [B, 6, H, W] (see `pose.ray_map`) from `state`,
        which is left unchanged (head outputs as `step_tensor`). A view without an image carries the
        learned masked-image token added to its ray-map tokens (reference `_encode_views`)."""
        with self._autocast(ray_map.device):
            feat, pos = self.encode_ray_map(ray_map)
            feat = feat + self.masked_img_token
            return self._recurrent_step(feat, pos, (ray_map.shape[-2], ray_map.shape[-1]), state, first=False)[0]

    @staticmethod
    def frame_predictions(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Head outputs of one frame -> the PREDICTION_KEYS tensors they give ([B, ...], no frame axis).

        Depth, its confidence and the intrinsics come from the self-view points ("depth"), the pose from
        "camera", the world points from "points"; a head not computed gives no keys.
        """
        pred = {}
        if "pts3d_in_self_view" in out:
            self_points = out["pts3d_in_self_view"]
            pred["depth"] = self_points[..., 2]
            pred["depth_conf"] = out["conf_self"]
            pred["intrinsics"] = intrinsics_from_points(self_points)
        if "pts3d_in_other_view" in out:
            pred["world_points"] = out["pts3d_in_other_view"]
            pred["world_points_conf"] = out["conf"]
        if "camera_pose" in out:
            pred["cam_to_world"] = pose_encoding_to_cam_to_world(out["camera_pose"])
        return pred

    def forward(self, images: torch.Tensor, heads: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Model-grid frames [B, S, 3, H, W] in [0, 1], stepped in order from the initial state.

        `heads` (None: all) limits the outputs as `frame_predictions` says.
        """
        state = self.initial_state(images.shape[0])
        frames = []
        for s in range(images.shape[1]):
            out, state = self.step_tensor(images[:, s], state, heads=heads)
            frames.append(self.frame_predictions(out))
        return {k: torch.stack([f[k] for f in frames], dim=1) for k in frames[0]}

    # ----- arrays --------------------------------------------------------------------------------
    def new_stream(self, heads: Sequence[str] | None = None) -> CUT3RStream:
        """A stream starting from the initial state, computing `heads` (None: all; must give depth and pose)."""
        return CUT3RStream(self, heads)


class CUT3RStream:
    """Frame-by-frame CUT3R: `step(image)` returns that frame's result on its own pixel grid."""

    def __init__(self, model: CUT3R, heads: Sequence[str] | None = None) -> None:
        if heads is not None and not {"depth", "camera"} <= set(model.check_heads(heads)):
            raise InputError(f"CUT3R stream: expected heads including 'depth' and 'camera', got {heads!r}")
        self.model = model
        #: the heads each step computes (None: all); a step's state does not depend on them
        self.heads = None if heads is None else tuple(heads)
        self.state: CUT3RState | None = None  # None: the initial state, made on the next step
        self.last_pose = torch.eye(4)  # camera-to-world predicted for the last frame (model units)

    def step(self, image: np.ndarray, intrinsics: np.ndarray | None = None) -> FrameResult:
        """Process one RGB uint8 (H, W, 3) image; returns depth, points, pose, intrinsics on its grid.

        `intrinsics` (3x3, input pixels): the known camera, given to the model as a ray map on the model
        grid. Its pose is the first frame's (identity) for the first frame and, after that, the pose this
        stream predicted for the previous frame (the camera's own pose is what the model estimates).
        """
        check_rgb_images([image])
        tensor, mapping = self.model.prepare_frame(image)
        with torch.inference_mode():
            state = self.state if self.state is not None else self.model.initial_state(1)
            rays = None
            if intrinsics is not None:
                k_model = mapping.intrinsics_to_model(np.asarray(intrinsics, dtype=np.float64))
                k = torch.as_tensor(k_model, dtype=torch.float32)
                pose = self.last_pose if self.state is not None else torch.eye(4)
                rays = ray_map(pose, k, tensor.shape[-2], tensor.shape[-1])[None].to(tensor.device)
            out, self.state = self.model.step_tensor(tensor[None], state, rays, self.heads)
            frame = self.model.frame_predictions(out)
            self.last_pose = frame["cam_to_world"][0].float().cpu()
            pred = {k: v[:, None] for k, v in frame.items()}
        return predictions_to_reconstruction(pred, [mapping], self.model.relative_scale).frame(0)

    def reset(self) -> None:
        """Forget every frame: the next step starts from the model's initial state and memory."""
        self.state = None
        self.last_pose = torch.eye(4)

    def state_dict(self) -> dict[str, np.ndarray]:
        """State tokens and pose memory as float32 arrays (exact for fp32/fp16/bf16) with their dtype; {} initially."""
        if self.state is None:
            return {}
        return {
            "tokens": self.state.tokens.detach().float().cpu().numpy(),
            "memory": self.state.memory.detach().float().cpu().numpy(),
            "frames": np.int64(self.state.frames),
            "last_pose": self.last_pose.detach().float().cpu().numpy(),
            "dtype": np.array(str(self.state.tokens.dtype).removeprefix("torch.")),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore a `state_dict` onto the model's device (InputError when its shapes do not fit the model)."""
        if not state:
            self.reset()
            return
        with torch.inference_mode():
            initial = self.model.initial_state(1)
        dtype = getattr(torch, str(state["dtype"]))
        tokens = torch.from_numpy(np.asarray(state["tokens"])).to(initial.tokens.device, dtype)
        memory = torch.from_numpy(np.asarray(state["memory"])).to(initial.memory.device, dtype)
        if tokens.shape != initial.tokens.shape or memory.shape != initial.memory.shape:
            raise InputError(
                f"CUT3R stream state: expected tokens {tuple(initial.tokens.shape)} and memory "
                f"{tuple(initial.memory.shape)}, got {tuple(tokens.shape)} and {tuple(memory.shape)}"
            )
        self.state = CUT3RState(tokens, memory, int(state["frames"]))
        self.last_pose = torch.from_numpy(np.array(state["last_pose"], np.float32))
