"""Messages built byte by byte, independently of fin3r_ros.conversions, for the conversion tests."""

from __future__ import annotations

import array

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from transforms3d.axangles import axangle2mat

from fin3r_ros.conversions import _compat

PAD_BYTE = 0xAB  # row padding filled with a value no test pixel relies on


def raw_image(values: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False, frame_id: str = "cam") -> Image:
    """Image of (H, W) or (H, W, C) `values` with `pad` garbage bytes after each row, in either byte order."""
    values = np.asarray(values)
    h, w = values.shape[:2]
    stored = values.astype(values.dtype.newbyteorder(">" if bigendian else "<"))
    rows = stored.reshape(h, -1).view(np.uint8)
    padded = np.full((h, rows.shape[1] + pad), PAD_BYTE, dtype=np.uint8)
    padded[:, : rows.shape[1]] = rows
    msg = Image(
        header=Header(frame_id=frame_id),
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=bigendian,
        step=padded.shape[1],
    )
    msg.data = array.array("B", padded.tobytes())
    return msg


def random_rigid(rng: np.random.Generator) -> np.ndarray:
    """A random 4x4 rigid transform (axis-angle rotation, translation within +-10)."""
    t = np.eye(4)
    t[:3, :3] = axangle2mat(rng.normal(size=3), rng.uniform(-np.pi, np.pi))
    t[:3, 3] = rng.uniform(-10, 10, size=3)
    return t


def smooth_rgb(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth (H, W, 3) uint8 image (bicubic upsampling of 8x8 noise): what jpeg is made for, unlike raw noise."""
    coarse = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


def use_codec(monkeypatch: pytest.MonkeyPatch, kind: str, name: str) -> object:
    """Make `name` the conversions' `kind` ("image" or "cloud") codec for one test; skip where it does not import."""
    codec = getattr(_compat, f"{kind.upper()}_CODECS")[name]
    if codec is None:
        pytest.skip(f"{name} does not import here (it ships with ROS 2, on no package registry)")
    monkeypatch.setattr(_compat, f"{kind}_codec", codec)
    return codec
