"""The interface every backbone implements (VGGT, CUT3R, and DUSt3R/MASt3R later).

A backbone is an `nn.Module` split the Fin3R way: `encode` (the per-image encoder, the only part
the adapter trains) and the frozen rest. Two levels of use:

- tensors, for training and evaluation: `prepare(images)` -> model-grid tensor [B, S, 3, Hm, Wm] in
  [0, 1] plus one `GridMapping` per frame; `forward(tensor)` -> dict of model-grid tensors with at
  least the keys of `PREDICTION_KEYS` (shapes in its comments), differentiable.
- arrays, for the session, the node and the CLI: `predict(images) -> Reconstruction` on the input
  pixel grid, under `inference_mode`.

Backbones listing `selectable_heads` compute only the outputs asked for (`forward(tensor, heads=...)`,
`predict(images, heads=...)`): "depth" (depth, depth_conf), "camera" (cam_to_world, intrinsics),
"points" (the point head: world_points, world_points_conf), CUT3R also "rgb". The outputs computed
are the same numbers as with every head; the session and the node ask for `SESSION_HEADS` only.

Windowed backends (VGGT) predict S frames jointly. Streaming backends (CUT3R) additionally offer
`new_stream()`, an object with `step(image) -> FrameResult` and `reset()`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Protocol

import numpy as np
import torch
from torch import nn

from fin3r_lib.errors import InputError
from fin3r_lib.models.grid import GridMapping
from fin3r_lib.models.reconstruction import FrameResult, Reconstruction
from fin3r_lib.models.token_cache import EncoderTokenCache, image_key

# Keys every `forward` returns, all on the model grid, batch B, frames S:
PREDICTION_KEYS = (
    "depth",  # [B, S, Hm, Wm] z-depth
    "depth_conf",  # [B, S, Hm, Wm] > 0
    "world_points",  # [B, S, Hm, Wm, 3] in the first frame's camera coordinates (OpenCV axes)
    "world_points_conf",  # [B, S, Hm, Wm] > 0
    "cam_to_world",  # [B, S, 4, 4]
    "intrinsics",  # [B, S, 3, 3] of the model grid
)

#: the outputs the session (and so the node) reads: it unprojects depth with intrinsics and poses
SESSION_HEADS = ("depth", "camera")


class Stream(Protocol):
    """A streaming reconstruction: one frame in, that frame's result out, state kept between calls."""

    def step(self, image: np.ndarray, intrinsics: np.ndarray | None = None) -> FrameResult:
        """Process one RGB uint8 (H, W, 3) image; returns its result on its own pixel grid.

        `intrinsics`: the camera's known K (3x3, the image's pixels) when there is one; a model that can take
        it as an input (CUT3R's ray map) does, the others ignore it (the session still unprojects with it).
        """
        ...

    def reset(self) -> None:
        """Forget every frame seen so far (state back to the initial state, bit-exactly)."""
        ...

    def state_dict(self) -> dict[str, np.ndarray]:
        """The state as named arrays (empty in the initial state), to resume a run."""
        ...

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore a `state_dict` exactly (an empty one: the initial state)."""
        ...


def check_rgb_images(images: Sequence[np.ndarray]) -> tuple[int, int]:
    """Validate a non-empty list of same-sized RGB uint8 (H, W, 3) images; returns (H, W)."""
    if len(images) == 0:
        raise InputError("expected at least one image, got an empty list")
    size = None
    for i, img in enumerate(images):
        if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            desc = f"{type(img).__name__} {getattr(img, 'shape', '')} {getattr(img, 'dtype', '')}".strip()
            raise InputError(f"image {i}: expected an RGB uint8 array of shape (H, W, 3), got {desc}")
        if img.shape[0] == 0 or img.shape[1] == 0:
            raise InputError(f"image {i}: expected a non-empty image, got shape {img.shape}")
        if size is None:
            size = img.shape[:2]
        elif img.shape[:2] != size:
            raise InputError(f"image {i}: expected size {size} like image 0, got {img.shape[:2]}")
    assert size is not None
    return int(size[0]), int(size[1])


class ReconstructionModel(nn.Module, ABC):
    """Base class of the backbones; see the module docstring for the contract."""

    #: registry name of the configuration this instance was built from (set by `build_model`)
    name: str = ""
    #: file the weights were loaded from (set by `load_checkpoint_into`); empty for random weights
    checkpoint_path: str = ""
    #: True when outputs are up to an unknown scale (VGGT); False when roughly metric (CUT3R)
    relative_scale: ClassVar[bool] = True
    #: True for backbones that offer `new_stream()` (one frame at a time with a state)
    streaming: ClassVar[bool] = False
    #: dotted path of the encoder's transformer blocks (each with `attn.qkv`), where the adapter goes
    encoder_blocks_path: ClassVar[str] = ""
    #: heads a `forward(..., heads=...)` call may be limited to; empty: this backbone always computes all
    selectable_heads: ClassVar[tuple[str, ...]] = ()
    #: True for backbones whose `forward` takes `token_cache` and `frame_keys` (see `predict`)
    caches_encoder_tokens: ClassVar[bool] = False

    def check_heads(self, heads: Sequence[str] | None) -> frozenset[str]:
        """The heads to compute for a `heads` request (None: all); InputError for an empty or unknown request."""
        if heads is None:
            return frozenset(self.selectable_heads)
        if isinstance(heads, str) or not heads or not set(heads) <= set(self.selectable_heads):
            raise InputError(
                f"{type(self).__name__}: expected heads among {self.selectable_heads} (at least one), got {heads!r}"
            )
        return frozenset(heads)

    def heads_request(self, heads: Sequence[str] | None) -> dict[str, tuple[str, ...]]:
        """Keyword arguments of `forward`/`new_stream` asking for `heads` only: {} when `heads` is None or
        this backbone cannot skip heads (it then computes them all, a superset)."""
        return {"heads": tuple(heads)} if heads is not None and self.selectable_heads else {}

    def encoder_blocks(self) -> nn.ModuleList:
        """The encoder's transformer blocks (the Fin3R adapter wraps each `attn.qkv`)."""
        return self.get_submodule(self.encoder_blocks_path)

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return next(self.parameters()).device

    @abstractmethod
    def prepare(self, images: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[GridMapping]]:
        """RGB uint8 images -> model-grid tensor [1, S, 3, Hm, Wm] in [0, 1] on the model's device."""

    @abstractmethod
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Per-image encoder tokens of model-grid images [B, S, 3, Hm, Wm] -> [B*S, N, C]."""

    @abstractmethod
    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Model-grid images [B, S, 3, Hm, Wm] in [0, 1] -> predictions (see PREDICTION_KEYS)."""

    def predict(
        self,
        images: Sequence[np.ndarray],
        heads: Sequence[str] | None = None,
        token_cache: EncoderTokenCache | None = None,
    ) -> Reconstruction:
        """Reconstruct RGB uint8 images (same size) jointly; results on the input pixel grid.

        `heads` (None: all) must include "depth" and "camera", which a Reconstruction is made of.
        `token_cache` (backbones with `caches_encoder_tokens` only) re-uses the encoder tokens of images
        seen in earlier calls, keyed by their pixels (see `fin3r_lib.models.token_cache`).
        """
        check_rgb_images(images)
        if heads is not None and not {"depth", "camera"} <= set(heads):
            raise InputError(f"predict: expected heads including 'depth' and 'camera', got {heads!r}")
        kwargs: dict = dict(self.heads_request(heads))
        if token_cache is not None:
            if not self.caches_encoder_tokens:
                raise InputError(f"predict: {type(self).__name__} takes no token_cache (it caches no encoder tokens)")
            kwargs.update(token_cache=token_cache, frame_keys=[image_key(image) for image in images])
        tensor, mappings = self.prepare(images)
        with torch.inference_mode():
            pred = self(tensor, **kwargs)
        return predictions_to_reconstruction(pred, mappings, self.relative_scale)


def predictions_to_reconstruction(
    pred: dict[str, torch.Tensor], mappings: Sequence[GridMapping], relative_scale: bool
) -> Reconstruction:
    """Map the first batch element of model-grid predictions back onto each frame's input grid.

    World points are re-derived by unprojecting the resampled depth with the input-grid intrinsics
    and poses, so depth, intrinsics, poses and points stay mutually consistent after resampling;
    the head's own world points are kept in `extras["head_world_points"]`. Without the point head
    (no `world_points` in `pred`) the points' confidence is the depth confidence they come from.
    """
    mapping = mappings[0]
    depth = pred["depth"][0].float()  # [S, Hm, Wm]
    conf = pred["depth_conf"][0].float()
    has_points = "world_points" in pred
    wconf = pred["world_points_conf"][0].float() if has_points else conf
    maps = [depth[:, None], conf[:, None], wconf[:, None]]
    if has_points:
        maps.append(pred["world_points"][0].float().permute(0, 3, 1, 2))  # [S, 3, Hm, Wm]
    on_input = mapping.to_input(torch.cat(maps, dim=1)).cpu().numpy()
    k_input = mapping.intrinsics_to_input(pred["intrinsics"][0].double().cpu().numpy())
    poses = pred["cam_to_world"][0].double().cpu().numpy()
    rec = Reconstruction(
        depth=on_input[:, 0].astype(np.float32),
        depth_conf=np.nan_to_num(on_input[:, 1], nan=0.0).astype(np.float32),
        world_points=np.zeros((*on_input.shape[:1], *on_input.shape[2:], 3), np.float32),
        world_points_conf=np.nan_to_num(on_input[:, 2], nan=0.0).astype(np.float32),
        cam_to_world=poses,
        intrinsics=k_input,
        relative_scale=relative_scale,
        extras={"head_world_points": np.moveaxis(on_input[:, 3:6], 1, -1).astype(np.float32)} if has_points else {},
    )
    rec.world_points = rec.unprojected_depth()
    return rec
