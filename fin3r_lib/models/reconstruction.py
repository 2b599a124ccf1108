"""The common output of every backbone: `Reconstruction` (S frames) and `FrameResult` (one frame).

Conventions (DESIGN.md): arrays on the input image's pixel grid, poses camera-to-world 4x4 float64
in OpenCV axes (x right, y down, z forward), intrinsics 3x3 float64 with pixel centres at integer
coordinates, depth along the camera z axis with NaN where invalid. `relative_scale` is True when the
model's unit is arbitrary (VGGT), False when it is approximately metric (CUT3R).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fin3r_lib.errors import InputError
from fin3r_lib.geometry import unproject_depth


@dataclass
class FrameResult:
    """One frame of a reconstruction, in the session's or model's world frame."""

    depth: np.ndarray  # (H, W) float32
    depth_conf: np.ndarray  # (H, W) float32
    world_points: np.ndarray  # (H, W, 3) float32
    world_points_conf: np.ndarray  # (H, W) float32
    cam_to_world: np.ndarray  # (4, 4) float64
    intrinsics: np.ndarray  # (3, 3) float64
    relative_scale: bool = True

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the frame's pixel grid."""
        return self.depth.shape[0], self.depth.shape[1]


@dataclass
class Reconstruction:
    """Per-frame geometry of S frames predicted together (or streamed), on the input pixel grids."""

    depth: np.ndarray  # (S, H, W) float32
    depth_conf: np.ndarray  # (S, H, W) float32
    world_points: np.ndarray  # (S, H, W, 3) float32
    world_points_conf: np.ndarray  # (S, H, W) float32
    cam_to_world: np.ndarray  # (S, 4, 4) float64
    intrinsics: np.ndarray  # (S, 3, 3) float64
    relative_scale: bool = True
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        s, h, w = self.depth.shape
        expected = {
            "depth_conf": (s, h, w),
            "world_points": (s, h, w, 3),
            "world_points_conf": (s, h, w),
            "cam_to_world": (s, 4, 4),
            "intrinsics": (s, 3, 3),
        }
        for name, shape in expected.items():
            got = getattr(self, name).shape
            if got != shape:
                raise InputError(f"Reconstruction.{name}: expected shape {shape}, got {got}")

    def __len__(self) -> int:
        return self.depth.shape[0]

    def frame(self, i: int) -> FrameResult:
        """Frame `i` as a FrameResult (views, not copies)."""
        return FrameResult(
            depth=self.depth[i],
            depth_conf=self.depth_conf[i],
            world_points=self.world_points[i],
            world_points_conf=self.world_points_conf[i],
            cam_to_world=self.cam_to_world[i],
            intrinsics=self.intrinsics[i],
            relative_scale=self.relative_scale,
        )

    @classmethod
    def from_frames(cls, frames: list[FrameResult]) -> Reconstruction:
        """Stack same-sized frames into one Reconstruction."""
        if not frames:
            raise InputError("Reconstruction.from_frames: expected at least one frame, got none")
        return cls(
            depth=np.stack([f.depth for f in frames]),
            depth_conf=np.stack([f.depth_conf for f in frames]),
            world_points=np.stack([f.world_points for f in frames]),
            world_points_conf=np.stack([f.world_points_conf for f in frames]),
            cam_to_world=np.stack([f.cam_to_world for f in frames]),
            intrinsics=np.stack([f.intrinsics for f in frames]),
            relative_scale=frames[0].relative_scale,
        )

    def unprojected_depth(self) -> np.ndarray:
        """World points obtained by unprojecting depth with intrinsics and poses, (S, H, W, 3)."""
        return np.stack(
            [unproject_depth(d, k, p) for d, k, p in zip(self.depth, self.intrinsics, self.cam_to_world, strict=True)]
        ).astype(np.float32)
