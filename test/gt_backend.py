"""A backend that serves ground truth (7-Scenes depth and poses) through the `ReconstructionModel` interface.

It proves conventions end to end: whatever the session, the node or the CLI do with a model's output,
feeding them the truth must give the truth back. Images are looked up by content (a hash of their RGB
bytes), so the backend sees exactly what a real model sees.

`GroundTruthModel` behaves like VGGT: `predict(images)` is joint over the call's frames, frame 0 of
the call is the world (identity pose), and each call may be at its own arbitrary scale (`scale_range`),
which exercises the session's Sim(3) alignment. It implements the tensor-level contract
(`prepare`/`forward`) for real, with an identity grid mapping, so the base class's `predict` runs
unchanged; `encode` returns pixel patches as tokens (there is no learned encoder).
`GroundTruthStreamingModel` behaves like CUT3R: `new_stream()` steps one frame at a time in the
first streamed frame's camera frame, metric.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from bag_fixtures import rigid

from fin3r_lib.errors import InputError
from fin3r_lib.geometry import unproject_depth
from fin3r_lib.models import FrameResult, GridMapping, ReconstructionModel, check_rgb_images
from fin3r_lib.models.dust3r import PairResult

#: confidence of pixels with ground-truth depth (VGGT-like 1 + exp(x)); pixels without depth get 1.0
VALID_CONF = 1.0 + np.e


def _image_key(rgb: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()).hexdigest()


class GroundTruthModel(ReconstructionModel):
    """Serves ground-truth depth (metres, NaN where 0) and poses of known frames, relative to each call's frame 0."""

    relative_scale: ClassVar[bool] = True

    def __init__(
        self,
        rgb: np.ndarray,
        depth_mm: np.ndarray,
        poses: np.ndarray,
        intrinsics: np.ndarray,
        scale_range: tuple[float, float] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not (len(rgb) == len(depth_mm) == len(poses)):
            raise InputError(
                f"expected as many images, depths and poses, got {len(rgb)}, {len(depth_mm)}, {len(poses)}"
            )
        depth = depth_mm.astype(np.float32) / 1000.0
        depth[depth_mm == 0] = np.nan
        self._depth = depth
        # the 7-Scenes rotations are off orthonormal by ~1.5e-4 (det ~0.9998): served as they are, no rigid
        # pose could reproduce them to 1e-6, so the nearest rotations are served (and are the truth)
        self.poses = rigid(poses)
        self._k = np.asarray(intrinsics, dtype=np.float64)
        self._index = {_image_key(img): i for i, img in enumerate(rgb)}
        self._scale_range = scale_range
        self._rng = np.random.default_rng(seed)
        #: scale applied to the latest call (1.0 without `scale_range`)
        self.last_scale = 1.0
        #: number of frames in the latest call
        self.last_call_size = 0

    @classmethod
    def from_fixture(cls, data: dict[str, np.ndarray], **kwargs: object) -> GroundTruthModel:
        """Build from the `seven_scenes` fixture dict (rgb, depth_mm, poses, K)."""
        return cls(data["rgb"], data["depth_mm"], data["poses"], data["K"], **kwargs)  # type: ignore[arg-type]

    @property
    def device(self) -> torch.device:
        """No parameters: always CPU."""
        return torch.device("cpu")

    def relative_poses(self) -> np.ndarray:
        """The served poses relative to frame 0 (the truth a session world built from frame 0 must match)."""
        return np.linalg.inv(self.poses[0]) @ self.poses

    def lookup(self, rgb: np.ndarray) -> int:
        """Index of the served frame whose pixels are exactly `rgb`."""
        key = _image_key(rgb)
        if key not in self._index:
            raise InputError(
                f"GroundTruthModel: expected one of its {len(self._index)} known images, got an unknown one"
            )
        return self._index[key]

    def prepare(self, images: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[GridMapping]]:
        """RGB uint8 images -> [1, S, 3, H, W] in [0, 1]; the model grid is the input grid."""
        h, w = check_rgb_images(images)
        tensor = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255.0)[None]
        return tensor, [GridMapping((h, w), (h, w), (h, w)) for _ in images]

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Non-overlapping 16x16 pixel patches as tokens, [B*S, N, 3*16*16] (no learned encoder)."""
        b, s, c, h, w = images.shape
        patches = torch.nn.functional.unfold(images.reshape(b * s, c, h, w), kernel_size=16, stride=16)
        return patches.transpose(1, 2)

    def _draw_scale(self) -> float:
        if self._scale_range is None:
            return 1.0
        return float(self._rng.uniform(*self._scale_range))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Ground truth of each image of [B, S, 3, H, W], relative to frame 0 of each batch element."""
        as_uint8 = (images.detach().cpu().float() * 255.0).round().to(torch.uint8).permute(0, 1, 3, 4, 2).numpy()
        out: dict[str, list[np.ndarray]] = {k: [] for k in ("depth", "conf", "points", "poses", "k")}
        for seq in as_uint8:
            idx = [self.lookup(img) for img in seq]
            scale = self._draw_scale()
            self.last_scale = scale
            self.last_call_size = len(idx)
            world_from_first = np.linalg.inv(self.poses[idx[0]])
            poses = np.stack([world_from_first @ self.poses[i] for i in idx])
            poses[:, :3, 3] *= scale
            depth = np.stack([self._depth[i] * scale for i in idx])
            out["depth"].append(depth)
            out["conf"].append(np.where(np.isfinite(depth), VALID_CONF, 1.0))
            out["points"].append(np.stack([unproject_depth(d, self._k, p) for d, p in zip(depth, poses, strict=True)]))
            out["poses"].append(poses)
            out["k"].append(np.broadcast_to(self._k, (len(idx), 3, 3)))
        t = {k: torch.from_numpy(np.stack(v)) for k, v in out.items()}
        return {
            "depth": t["depth"].float(),
            "depth_conf": t["conf"].float(),
            "world_points": t["points"].float(),
            "world_points_conf": t["conf"].float(),
            "cam_to_world": t["poses"].double(),
            "intrinsics": t["k"].double(),
        }


class GroundTruthStream:
    """One ground-truth stream: each step returns its frame in the first stepped frame's camera frame."""

    def __init__(self, model: GroundTruthStreamingModel) -> None:
        self._model = model
        self._world_from_first: np.ndarray | None = None

    def step(self, image: np.ndarray, intrinsics: np.ndarray | None = None) -> FrameResult:
        """The ground truth of `image` in the stream's world (metric); a known K does not change the truth."""
        m = self._model
        i = m.lookup(image)
        if self._world_from_first is None:
            self._world_from_first = np.linalg.inv(m.poses[i])
        pose = self._world_from_first @ m.poses[i]
        depth = m._depth[i]
        conf = np.where(np.isfinite(depth), VALID_CONF, 1.0).astype(np.float32)
        return FrameResult(
            depth=depth.copy(),
            depth_conf=conf,
            world_points=unproject_depth(depth, m._k, pose).astype(np.float32),
            world_points_conf=conf.copy(),
            cam_to_world=pose,
            intrinsics=m._k.copy(),
            relative_scale=False,
        )

    def reset(self) -> None:
        """Forget the first frame; the next step defines the world again."""
        self._world_from_first = None

    def state_dict(self) -> dict[str, np.ndarray]:
        """The stream's world ({} before the first step)."""
        return {} if self._world_from_first is None else {"world_from_first": self._world_from_first.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore a `state_dict`."""
        self._world_from_first = state.get("world_from_first")


class GroundTruthStreamingModel(GroundTruthModel):
    """The ground truth served as a streaming (CUT3R-like, metric) backend."""

    relative_scale: ClassVar[bool] = False
    streaming: ClassVar[bool] = True

    def new_stream(self) -> GroundTruthStream:
        """A fresh stream whose world is the first frame it steps."""
        return GroundTruthStream(self)


class GroundTruthPairwiseModel(GroundTruthModel):
    """The ground truth served as a pairwise (DUSt3R-like) backend: `predict_pair(image, other)` in `image`'s
    camera frame, each pair at its own scale (`scale_range`); `predict([image])` is the pair (image, image)."""

    pairwise: ClassVar[bool] = True
    #: number of `predict_pair` calls so far
    pair_calls: int = 0

    def predict_pair(self, image: np.ndarray, other: np.ndarray) -> PairResult:
        """`image`'s ground truth (identity pose) and `other`'s ground-truth points in `image`'s frame."""
        i, j = self.lookup(image), self.lookup(other)
        self.pair_calls += 1
        scale = self._draw_scale()
        self.last_scale = scale
        relative = np.linalg.inv(self.poses[i]) @ self.poses[j]
        relative[:3, 3] *= scale
        depth = self._depth[i] * scale
        conf = np.where(np.isfinite(depth), VALID_CONF, 1.0).astype(np.float32)
        frame = FrameResult(
            depth=depth,
            depth_conf=conf,
            world_points=unproject_depth(depth, self._k).astype(np.float32),
            world_points_conf=conf.copy(),
            cam_to_world=np.eye(4),
            intrinsics=self._k.copy(),
        )
        other_depth = self._depth[j] * scale
        other_conf = np.where(np.isfinite(other_depth), VALID_CONF, 0.0).astype(np.float32)
        return PairResult(frame, unproject_depth(other_depth, self._k, relative).astype(np.float32), other_conf)


class GatedModel(GroundTruthModel):
    """Ground truth that waits for `gate` in forward (set `gate` and `entered` to Events): the node stays busy."""

    gate: threading.Event
    entered: threading.Event

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        self.entered.set()
        assert self.gate.wait(10.0)
        return super().forward(images)
