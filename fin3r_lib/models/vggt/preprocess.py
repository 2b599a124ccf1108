"""VGGT's reference preprocessing, for RGB uint8 arrays of any size and aspect.

- "crop": width -> `size`, height -> round(h * size / w / p) * p (bicubic, PIL), then centre-cropped
  to `size` rows if taller.
- "pad": long side -> `size`, short side -> a multiple of p, then padded with white to size x size.

Each frame's placement on the model grid is returned as a `GridMapping` (crop: positive offset,
pad: negative offset), so outputs can be mapped back to the input pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from fin3r_lib.errors import InputError
from fin3r_lib.models.base import check_rgb_images
from fin3r_lib.models.grid import GridMapping

MODES = ("crop", "pad")


def _round_to(x: float, multiple: int) -> int:
    """Nearest positive multiple of `multiple` (at least one; the reference would produce 0)."""
    return max(1, round(x / multiple)) * multiple


def resized_size(height: int, width: int, size: int, patch: int, mode: str) -> tuple[int, int]:
    """(Hr, Wr) the image is resized to before cropping/padding."""
    if mode == "crop" or width >= height:
        return _round_to(height * size / width, patch), size
    return size, _round_to(width * size / height, patch)


def grid_mapping(height: int, width: int, size: int, patch: int, mode: str) -> GridMapping:
    """Where the model grid sits in the resized image of an H x W input."""
    if mode not in MODES:
        raise InputError(f"VGGT preprocessing: expected mode in {MODES}, got {mode!r}")
    hr, wr = resized_size(height, width, size, patch, mode)
    if mode == "crop":
        hm = min(hr, size)
        return GridMapping((height, width), (hr, wr), (hm, wr), ((hr - hm) // 2, 0))
    return GridMapping((height, width), (hr, wr), (size, size), (-((size - hr) // 2), -((size - wr) // 2)))


def preprocess_image(image: np.ndarray, mapping: GridMapping) -> torch.Tensor:
    """One RGB uint8 (H, W, 3) image -> [3, Hm, Wm] float in [0, 1] placed as `mapping` says."""
    hr, wr = mapping.resized_size
    resized = np.asarray(Image.fromarray(image).resize((wr, hr), Image.Resampling.BICUBIC))
    x = torch.from_numpy(resized.copy()).permute(2, 0, 1).float().div_(255.0)
    oy, ox = mapping.offset
    hm, wm = mapping.model_size
    if oy >= 0 and ox >= 0:
        return x[:, oy : oy + hm, ox : ox + wm]
    top, left = -oy, -ox
    return F.pad(x, (left, wm - wr - left, top, hm - hr - top), mode="constant", value=1.0)


def preprocess_images(
    images: Sequence[np.ndarray], size: int = 518, patch: int = 14, mode: str = "crop"
) -> tuple[torch.Tensor, list[GridMapping]]:
    """Same-sized RGB uint8 images -> ([S, 3, Hm, Wm] in [0, 1], one GridMapping per frame)."""
    if size % patch:
        raise InputError(f"VGGT preprocessing: expected a target size that is a multiple of {patch}, got {size}")
    h, w = check_rgb_images(images)
    mapping = grid_mapping(h, w, size, patch, mode)
    return torch.stack([preprocess_image(img, mapping) for img in images]), [mapping] * len(images)
