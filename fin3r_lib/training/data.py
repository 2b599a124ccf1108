"""Training samples on the model grid, and the seeded mix of single-view and replay micro-batches.

Images go through the backbone's own `prepare` (the inference preprocessing). Labels and ground
truth, given on the frame's pixel grid, are sampled at the model pixels' centres (nearest, so depth
edges are not blurred); model pixels outside the image (padding) are invalid.

Which items a micro-batch holds is a pure function of (seed, step, micro-step): resuming at step N
draws exactly what an uninterrupted run draws, so the sampler's position is the step counter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fin3r_lib.data.frame import Frame
from fin3r_lib.errors import InputError
from fin3r_lib.geometry import rigid_inverse, transform_points, unproject_depth
from fin3r_lib.models.base import ReconstructionModel
from fin3r_lib.models.grid import GridMapping
from fin3r_lib.training.pseudo_label import PseudoLabel, ray_norms


def to_model_grid(mapping: GridMapping, values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest samples of input-grid `values` (H, W, ...) and `mask` (H, W) at the model pixels' centres."""
    hm, wm = mapping.model_size
    v, u = np.mgrid[0:hm, 0:wm].astype(np.float64)
    ui, vi = mapping.model_to_input(u, v)
    ui, vi = np.rint(ui).astype(np.int64), np.rint(vi).astype(np.int64)
    h, w = mask.shape
    inside = (ui >= 0) & (ui < w) & (vi >= 0) & (vi < h)
    uc, vc = np.clip(ui, 0, w - 1), np.clip(vi, 0, h - 1)
    return values[vc, uc], mask[vc, uc] & inside


@dataclass
class SingleViewSample:
    """One labelled image on the model grid: image [3, Hm, Wm], label and mask [Hm, Wm], ray lengths."""

    image: torch.Tensor
    label: torch.Tensor
    mask: torch.Tensor
    ray_norm: torch.Tensor


@dataclass
class ReplaySample:
    """S frames on the model grid: images [S, 3, Hm, Wm], ground-truth points [S, Hm, Wm, 3] in the
    first frame's camera coordinates, mask [S, Hm, Wm]."""

    images: torch.Tensor
    points: torch.Tensor
    mask: torch.Tensor


def single_view_sample(
    model: ReconstructionModel, frame: Frame, label: PseudoLabel, flip: bool = False
) -> SingleViewSample:
    """`frame` and its pseudo-label on the model grid. `flip` mirrors the label left-right (a broken
    pairing, only for proving that the trainer's tests can fail)."""
    tensor, (mapping,) = model.prepare([frame.rgb])
    depth, mask = (label.depth[:, ::-1], label.mask[:, ::-1]) if flip else (label.depth, label.mask)
    depth_m, mask_m = to_model_grid(mapping, depth, mask)
    k = None if frame.intrinsics is None else mapping.intrinsics_to_model(frame.intrinsics)
    rays = ray_norms(mapping.model_size, k)
    return SingleViewSample(
        image=tensor[0, 0].cpu(),
        label=torch.from_numpy(np.ascontiguousarray(depth_m, np.float32)),
        mask=torch.from_numpy(np.ascontiguousarray(mask_m)),
        ray_norm=torch.from_numpy(rays),
    )


def replay_sample(model: ReconstructionModel, frames: Sequence[Frame]) -> ReplaySample:
    """A window of frames with ground-truth depth, intrinsics and poses -> a replay sample."""
    for f in frames:
        if f.depth is None or f.intrinsics is None or f.cam_to_world is None:
            missing = [n for n in ("depth", "intrinsics", "cam_to_world") if getattr(f, n) is None]
            raise InputError(
                f"replay frame {f.source or f.index}: expected depth, intrinsics and pose, missing {missing}"
            )
    tensor, mappings = model.prepare([f.rgb for f in frames])
    world_to_first = rigid_inverse(np.asarray(frames[0].cam_to_world, np.float64))
    points, masks = [], []
    for f, mapping in zip(frames, mappings, strict=True):
        depth = np.asarray(f.depth, np.float32)
        with np.errstate(invalid="ignore"):
            valid = np.isfinite(depth) & (depth > 0)
        depth_m, mask_m = to_model_grid(mapping, np.where(valid, depth, 0.0), valid)
        k_m = mapping.intrinsics_to_model(f.intrinsics)
        pts = transform_points(unproject_depth(depth_m, k_m), world_to_first @ np.asarray(f.cam_to_world))
        points.append(np.where(mask_m[..., None], pts, 0.0).astype(np.float32))
        masks.append(mask_m)
    return ReplaySample(tensor[0].cpu(), torch.from_numpy(np.stack(points)), torch.from_numpy(np.stack(masks)))


def replay_windows(count: int, views: int, stride: int) -> list[list[int]]:
    """Start-ordered frame-index windows of `views` frames `stride` apart over `count` frames."""
    span = (views - 1) * stride
    return [list(range(s, s + span + 1, stride)) for s in range(0, count - span)]


@dataclass(frozen=True)
class Draw:
    """What one micro-batch holds: its kind, the source index and the item indices in that source."""

    kind: str  # "single_view" or "replay"
    source: int
    items: tuple[int, ...]


class MixSampler:
    """Seeded choice of micro-batches: replay with probability `replay_fraction` (when there is replay
    data), the source by its weight, the items uniformly (with replacement across steps)."""

    def __init__(
        self,
        single_sizes: Sequence[int],
        single_weights: Sequence[float],
        replay_sizes: Sequence[int],
        replay_weights: Sequence[float],
        replay_fraction: float,
        seed: int,
    ) -> None:
        self.sizes = {"single_view": list(single_sizes), "replay": list(replay_sizes)}
        self.weights = {"single_view": list(single_weights), "replay": list(replay_weights)}
        for kind, sizes in self.sizes.items():
            for i, n in enumerate(sizes):
                if n < 1:
                    raise InputError(f"{kind}.{i}: expected at least one usable item, got none")
        self.replay_fraction = replay_fraction if self.sizes["replay"] else 0.0
        if not self.sizes["single_view"]:
            self.replay_fraction = 1.0
        self.seed = seed

    def draw(self, step: int, micro: int, batch_size: int, replay_batch_size: int) -> Draw:
        """The micro-batch `micro` of optimizer step `step`."""
        rng = np.random.default_rng([self.seed, step, micro])
        kind = "replay" if rng.random() < self.replay_fraction else "single_view"
        weights = np.asarray(self.weights[kind], np.float64)
        source = int(rng.choice(len(weights), p=weights / weights.sum()))
        n = batch_size if kind == "single_view" else replay_batch_size
        items = rng.integers(0, self.sizes[kind][source], size=n)
        return Draw(kind, source, tuple(int(i) for i in items))


def augment_images(
    images: torch.Tensor, seed: tuple[int, ...], first: int = 0, total: int | None = None
) -> torch.Tensor:
    """Photometric jitter of images [N, ..., 3, H, W] in [0, 1]: per image a brightness factor in
    [0.8, 1.2] and a contrast factor in [0.8, 1.2] around its mean, seeded by `seed`.

    `images` may be items `first` .. `first + N` of a micro-batch of `total` (a rank's share): each gets
    the factors it has in the whole micro-batch.
    """
    rng = np.random.default_rng(list(seed))
    n = images.shape[0]
    total = n if total is None else total
    shape = (n,) + (1,) * (images.dim() - 1)
    bright = torch.from_numpy(rng.uniform(0.8, 1.2, total)[first : first + n]).to(images).view(shape)
    contrast = torch.from_numpy(rng.uniform(0.8, 1.2, total)[first : first + n]).to(images).view(shape)
    mean = images.mean(dim=tuple(range(1, images.dim())), keepdim=True)
    return (((images - mean) * contrast + mean) * bright).clamp(0.0, 1.0)
