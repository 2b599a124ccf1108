"""Evaluation crops of the monocular-depth protocols: which pixels of a depth map count.

- `garg` (KITTI, Garg et al. ECCV 2016, the crop of the Eigen split in monodepth/BTS/AdaBins): rows
  [int(0.40810811 H), int(0.99189189 H)), columns [int(0.03594771 W), int(0.96405229 W));
- `eigen` (KITTI, Eigen et al. NIPS 2014): rows [int(0.3324324 H), int(0.91351351 H)), columns
  [int(0.0359477 W), int(0.96405229 W));
- `nyu` (NYUv2, Eigen et al.): rows [45, 471), columns [41, 601) of the 480x640 image; on a map of
  another size (frames downscaled for the model) each bound is scaled and rounded to a whole pixel;
- `none`: every pixel.
The fractions are those published (relative to the ground truth's size), truncated to integers the
way the published code does (`int()`), so a 375x1242 KITTI map is cropped to rows 153-370 and columns
44-1196 by `garg`. They go with the KITTI cap of 80 m (`max_depth`).
"""

from __future__ import annotations

import numpy as np

from fin3r_lib.errors import InputError

# (top, bottom, left, right) as fractions of (H, H, W, W)
_KITTI_FRACTIONS = {
    "garg": (0.40810811, 0.99189189, 0.03594771, 0.96405229),
    "eigen": (0.3324324, 0.91351351, 0.0359477, 0.96405229),
}
_NYU_SIZE, _NYU_BOUNDS = (480, 640), (45, 471, 41, 601)
CROPS = ("none", *_KITTI_FRACTIONS, "nyu")


def check_crop(name: str) -> str:
    """`name` when it is one of CROPS, else an InputError naming them."""
    if name not in CROPS:
        raise InputError(f"expected an evaluation crop among {CROPS}, got {name!r}")
    return name


def _scaled(bound: int, size: int, reference: int) -> int:
    """`bound` (a pixel of a `reference`-sized axis) on a `size`-sized axis, rounded half up."""
    return (2 * bound * size + reference) // (2 * reference)


def crop_bounds(name: str, height: int, width: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of crop `name` on a height x width map; bottom and right exclusive."""
    if check_crop(name) == "none":
        return 0, height, 0, width
    if name == "nyu":
        (h0, w0), (top, bottom, left, right) = _NYU_SIZE, _NYU_BOUNDS
        return (
            _scaled(top, height, h0),
            _scaled(bottom, height, h0),
            _scaled(left, width, w0),
            _scaled(right, width, w0),
        )
    top, bottom, left, right = _KITTI_FRACTIONS[name]
    return int(top * height), int(bottom * height), int(left * width), int(right * width)


def crop_mask(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Boolean mask of crop `name` for a depth map (H, W) or video (S, H, W): True inside the crop."""
    if len(shape) < 2:
        raise InputError(f"expected a depth map shape (..., H, W), got {shape}")
    height, width = shape[-2:]
    top, bottom, left, right = crop_bounds(name, height, width)
    mask = np.zeros((height, width), dtype=bool)
    mask[top:bottom, left:right] = True
    return np.broadcast_to(mask, shape)
