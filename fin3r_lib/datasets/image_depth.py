"""Folders of image + depth pairs (NYU, KITTI style): `rgb/` and `depth/` files matched by name stem.

Depth files are 16-bit PNGs holding metres x `depth_scale` (NYUv2 exports: 1000, KITTI depth: 256),
0 invalid, or `.npy` metres. Intrinsics: given, or one `intrinsics.txt` (3x3) in the folder, else
none. Colour images without a depth file are skipped and counted (`ImageDepthFolder.skipped`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fin3r_lib.data.frame import Frame
from fin3r_lib.data.sources import image_files
from fin3r_lib.datasets.depth_files import read_depth, read_rgb, size_matches
from fin3r_lib.errors import InputError

RGB_DIR, DEPTH_DIR = "rgb", "depth"
DEPTH_SUFFIXES = (".png", ".npy", ".tif", ".tiff")


def is_image_depth_folder(path: Path) -> bool:
    """True when `path` holds `rgb/` and `depth/` folders."""
    return (path / RGB_DIR).is_dir() and (path / DEPTH_DIR).is_dir()


class ImageDepthFolder:
    """Image + depth pairs of a folder; iterate for `Frame`s with depth (see the module docstring)."""

    def __init__(self, folder: Path, depth_scale: float, intrinsics: np.ndarray | None = None, fps: float = 30.0):
        if not depth_scale > 0:
            raise InputError(f"expected a depth scale > 0 (stored units per metre), got {depth_scale!r}")
        self.folder, self.depth_scale, self.fps = folder, depth_scale, fps
        k_file = folder / "intrinsics.txt"
        if intrinsics is None and k_file.is_file():
            intrinsics = np.loadtxt(k_file)
        if intrinsics is not None and np.shape(intrinsics) != (3, 3):
            raise InputError(f"expected 3x3 intrinsics, got shape {np.shape(intrinsics)}")
        self.intrinsics = None if intrinsics is None else np.asarray(intrinsics, np.float64)
        depth_by_stem = {p.stem: p for p in (folder / DEPTH_DIR).iterdir() if p.suffix.lower() in DEPTH_SUFFIXES}
        self.pairs: list[tuple[Path, Path]] = []
        self.skipped: list[dict[str, str]] = []
        for rgb in image_files(folder / RGB_DIR):
            if rgb.stem in depth_by_stem:
                self.pairs.append((rgb, depth_by_stem[rgb.stem]))
            else:
                self.skipped.append({"source": str(rgb), "reason": f"no {DEPTH_DIR}/{rgb.stem}.* depth file"})
        if not self.pairs:
            raise InputError(
                f"{folder}: expected images in {RGB_DIR}/ with depth files of the same name in {DEPTH_DIR}/, found none"
            )

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[Frame]:
        for i, (rgb_path, depth_path) in enumerate(self.pairs):
            rgb = read_rgb(rgb_path)
            depth = read_depth(depth_path, self.depth_scale)
            size_matches(rgb, depth, depth_path)
            yield Frame(
                rgb=rgb,
                stamp=i / self.fps,
                camera=self.folder.name,
                intrinsics=self.intrinsics,
                index=i,
                depth=depth,
                source=str(rgb_path),
            )
