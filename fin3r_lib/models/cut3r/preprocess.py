"""CUT3R's input preprocessing, as in the reference loader, with the placement kept as a GridMapping.

Default: the long side is resized to `image_size` (Lanczos when shrinking, bicubic when enlarging,
sizes rounded), then each side is center-cropped to a multiple of the patch size (a square result
is cropped to 4:3). `square_crop` (the 224 model): the short side goes to `image_size` and the
centre square is kept. Pixels are returned in [0, 1]; the model normalizes them to [-1, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from fin3r_lib.models.base import check_rgb_images
from fin3r_lib.models.grid import GridMapping


def _resize(img: Image.Image, long_side: int) -> Image.Image:
    size = max(img.size)
    interp = Image.Resampling.LANCZOS if size > long_side else Image.Resampling.BICUBIC
    return img.resize(tuple(round(x * long_side / size) for x in img.size), interp)


def preprocess_image(
    image: np.ndarray, image_size: int, patch_size: int = 16, square_crop: bool = False
) -> tuple[torch.Tensor, GridMapping]:
    """RGB uint8 (H, W, 3) -> model-grid float tensor [3, Hm, Wm] in [0, 1] and its GridMapping."""
    h_in, w_in = image.shape[:2]
    img = Image.fromarray(image)
    long_side = round(image_size * max(w_in / h_in, h_in / w_in)) if square_crop else image_size
    img = _resize(img, long_side)
    w, h = img.size
    cx, cy = w // 2, h // 2
    if square_crop:
        half_w = half_h = min(cx, cy)
    else:
        unit = patch_size // 2
        half_w, half_h = (2 * cx) // patch_size * unit, (2 * cy) // patch_size * unit
        if w == h:
            half_h = (3 * half_w // 4) // unit * unit
    box = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    crop = np.asarray(img.crop(box))
    tensor = torch.from_numpy(crop.copy()).permute(2, 0, 1).float().div(255)
    mapping = GridMapping((h_in, w_in), (h, w), (2 * half_h, 2 * half_w), (cy - half_h, cx - half_w))
    return tensor, mapping


class CroCoImageInput:
    """`prepare_frame` / `prepare` of the CroCo-family backbones (CUT3R, DUSt3R, MASt3R): `preprocess_image`
    with the model's `cfg.image_size`, `cfg.patch_size` and `cfg.square_crop`, on the model's device."""

    cfg: Any
    device: torch.device

    def prepare_frame(self, image: np.ndarray) -> tuple[torch.Tensor, GridMapping]:
        """One RGB uint8 image -> model-grid tensor [3, Hm, Wm] in [0, 1] on the model's device, mapping."""
        tensor, mapping = preprocess_image(image, self.cfg.image_size, self.cfg.patch_size, self.cfg.square_crop)
        return tensor.to(self.device), mapping

    def prepare(self, images: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[GridMapping]]:
        """RGB uint8 images (same size) -> [1, S, 3, Hm, Wm] in [0, 1] and one GridMapping per frame."""
        check_rgb_images(images)
        frames = [self.prepare_frame(img) for img in images]
        return torch.stack([t for t, _ in frames])[None], [m for _, m in frames]
