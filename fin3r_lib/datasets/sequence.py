"""`open_sequence`: one entry point over the dataset readers, choosing by what the folder holds."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fin3r_lib.data.dataset import MANIFEST, FrameDataset
from fin3r_lib.data.frame import Frame
from fin3r_lib.datasets.image_depth import ImageDepthFolder, is_image_depth_folder
from fin3r_lib.datasets.seven_scenes import SevenScenes, is_seven_scenes
from fin3r_lib.datasets.tum_rgbd import TumSequence, is_tum_rgbd
from fin3r_lib.errors import InputError

SEQUENCE_KINDS = ("seven_scenes", "tum", "image_depth", "frames")


@dataclass
class Sequence:
    """An evaluation sequence: its frames (read lazily, in order), what kind it is, what was skipped."""

    path: Path
    kind: str
    frames: Iterable[Frame]  # re-iterable: every iteration reads the frames again
    skipped: list[dict[str, str]] = field(default_factory=list)

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.frames)


def sequence_kind(path: Path) -> str:
    """The kind of sequence folder `path` is (InputError saying what was expected when none)."""
    if (path / MANIFEST).is_file():
        return "frames"
    if is_tum_rgbd(path):
        return "tum"
    if is_seven_scenes(path):
        return "seven_scenes"
    if is_image_depth_folder(path):
        return "image_depth"
    raise InputError(
        f"{path}: expected a 7-Scenes folder (frame-*.color.png), a TUM RGB-D folder (rgb.txt, depth.txt), "
        f"an rgb/ + depth/ folder or a `fin3r extract` dataset ({MANIFEST}), got none of those"
    )


def open_sequence(
    path: str | Path,
    kind: str = "auto",
    *,
    depth_scale: float = 1000.0,
    intrinsics: np.ndarray | None = None,
    max_time_difference: float = 0.02,
) -> Sequence:
    """Open an evaluation sequence. `depth_scale` (stored units per metre) applies to `image_depth` folders;
    `intrinsics` overrides those of TUM and `image_depth`; `max_time_difference` pairs TUM streams."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: expected a sequence folder, no such folder")
    if kind == "auto":
        kind = sequence_kind(path)
    if kind == "seven_scenes":
        return Sequence(path, kind, SevenScenes(path))
    if kind == "tum":
        tum = TumSequence(path, max_time_difference, intrinsics)
        return Sequence(path, kind, tum, tum.skipped)
    if kind == "image_depth":
        folder = ImageDepthFolder(path, depth_scale, intrinsics)
        return Sequence(path, kind, folder, folder.skipped)
    if kind == "frames":
        return Sequence(path, kind, FrameDataset(path))
    raise InputError(f"expected a sequence kind among ('auto', {', '.join(map(repr, SEQUENCE_KINDS))}), got {kind!r}")
