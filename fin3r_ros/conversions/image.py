"""sensor_msgs/Image and CompressedImage <-> numpy: RGB uint8, depth float32 metres (REP 118), 32FC1 maps."""

from __future__ import annotations

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from . import _compat
from ._buffer import HOST_BIGENDIAN, message_bytes, new_message, to_byte_array
from .errors import ConversionError

# encoding: (element dtype, channels stored, OpenCV colour conversion to RGB; None: already RGB).
_COLOR_ENCODINGS: dict[str, tuple[np.dtype, int, int | None]] = {
    "rgb8": (np.dtype(np.uint8), 3, None),
    "bgr8": (np.dtype(np.uint8), 3, cv2.COLOR_BGR2RGB),
    "8UC3": (np.dtype(np.uint8), 3, cv2.COLOR_BGR2RGB),
    "rgba8": (np.dtype(np.uint8), 4, cv2.COLOR_RGBA2RGB),
    "bgra8": (np.dtype(np.uint8), 4, cv2.COLOR_BGRA2RGB),
    "mono8": (np.dtype(np.uint8), 1, cv2.COLOR_GRAY2RGB),
    "mono16": (np.dtype(np.uint16), 1, cv2.COLOR_GRAY2RGB),
}
_DEPTH_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}
# encoding an RGB array can be written in: OpenCV conversion from RGB (None: stored as is).
_RGB_OUTPUT_ENCODINGS: dict[str, int | None] = {
    "rgb8": None,
    "bgr8": cv2.COLOR_RGB2BGR,
    "8UC3": cv2.COLOR_RGB2BGR,
    "rgba8": cv2.COLOR_RGB2RGBA,
    "bgra8": cv2.COLOR_RGB2BGRA,
}
_COMPRESSED_FORMATS = {"jpeg": ".jpg", "png": ".png"}
# A decoded compressed image (OpenCV's BGR(A) / grey order) by channel count: its conversion to RGB.
_DECODED_TO_RGB = {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}


def _check_image(msg: Image, dtype: np.dtype, channels: int) -> None:
    """Raise ConversionError unless the message's size, step and data length fit (dtype, channels)."""
    if msg.width == 0 or msg.height == 0:
        raise ConversionError(f"image size must be non-zero, got {msg.width}x{msg.height} (width x height)")
    pixel = channels * dtype.itemsize
    if msg.step < msg.width * pixel:
        raise ConversionError(
            f"image step {msg.step} is smaller than width x pixel size = {msg.width} x {pixel} = "
            f"{msg.width * pixel} bytes ({msg.encoding})"
        )
    size = len(msg.data)
    if size < msg.step * msg.height:
        raise ConversionError(
            f"image data has {size} bytes, expected at least step x height = {msg.step} x {msg.height} = "
            f"{msg.step * msg.height}"
        )


def _unsupported(kind: str, encoding: str, known: object) -> ConversionError:
    return ConversionError(f"{kind} encoding {encoding!r} is not supported; expected one of {sorted(known)}")


def _to_rgb(values: np.ndarray, conversion: int | None) -> np.ndarray:
    """(H, W, 3) uint8 RGB of (H, W, C) values; 16-bit values scale by 255/65535, rounded, like cv_bridge."""
    if values.dtype == np.uint16:
        values = np.rint(values * (255.0 / 65535.0)).astype(np.uint8)
    return values if conversion is None else cv2.cvtColor(values, conversion)


def _image_message(values: np.ndarray, encoding: str, header: Header) -> Image:
    """Image of (H, W, C) native-endian `values` with a tight step."""
    h, w, c = values.shape
    return new_message(
        Image,
        to_byte_array(values),
        header=header,
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=HOST_BIGENDIAN,
        step=w * c * values.itemsize,
    )


def image_to_rgb(msg: Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an Image: rgb8, bgr8, rgba8, bgra8, mono8, mono16 or 8UC3.

    8UC3 is read as bgr8 (OpenCV's channel order, which is what publishers of 8UC3 hold). Alpha is
    dropped, mono is repeated over the three channels, mono16 scales by 255/65535. Row padding
    (`step`) and `is_bigendian` are honoured.
    """
    if msg.encoding not in _COLOR_ENCODINGS:
        raise _unsupported("colour image", msg.encoding, _COLOR_ENCODINGS)
    dtype, channels, conversion = _COLOR_ENCODINGS[msg.encoding]
    _check_image(msg, dtype, channels)
    return _to_rgb(_compat.image_codec.image_array(msg, dtype, channels), conversion)


def depth_image_to_array(msg: Image) -> np.ndarray:
    """(H, W) float32 metres of a depth Image (16UC1 millimetres or 32FC1 metres); NaN where invalid.

    Invalid: 0 mm, and non-finite 32FC1 values (REP 117's -Inf / +Inf as well as NaN).
    """
    if msg.encoding not in _DEPTH_ENCODINGS:
        raise _unsupported("depth image", msg.encoding, _DEPTH_ENCODINGS)
    dtype, channels = _DEPTH_ENCODINGS[msg.encoding]
    _check_image(msg, dtype, channels)
    values = _compat.image_codec.image_array(msg, dtype, channels)[..., 0]
    if dtype == np.uint16:
        depth = values.astype(np.float32) * np.float32(0.001)
        depth[values == 0] = np.nan
        return depth
    depth = np.ascontiguousarray(values)
    depth[~np.isfinite(depth)] = np.nan
    return depth


def compressed_to_rgb(msg: CompressedImage) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a CompressedImage (jpeg or png, colour or grey, 8 or 16 bit)."""
    if "compressedDepth" in msg.format:
        raise ConversionError(f"expected a jpeg or png colour CompressedImage, got format {msg.format!r}")
    if len(msg.data) == 0:
        raise ConversionError(f"expected jpeg or png bytes in the CompressedImage, got 0 bytes (format {msg.format!r})")
    try:
        decoded = _compat.image_codec.decode_compressed(msg)
    except cv2.error as err:
        decoded = None
        reason = str(err).strip().splitlines()[-1]
    else:
        reason = "OpenCV could not decode them"
    if decoded is None:
        head = message_bytes(msg.data)[:8].tobytes()
        raise ConversionError(
            f"expected jpeg or png bytes in the CompressedImage (format {msg.format!r}), got {len(msg.data)} "
            f"bytes starting {head!r}: {reason}"
        )
    channels = 1 if decoded.ndim == 2 else decoded.shape[2]
    return _to_rgb(decoded, _DECODED_TO_RGB[channels])


def _check_array(values: np.ndarray, what: str, ndim: int, kinds: str, channels: int | None = None) -> None:
    """Raise ConversionError unless `values` has `ndim` dims, non-zero size, a dtype kind in `kinds`."""
    shape_ok = values.ndim == ndim and (channels is None or values.shape[-1] == channels)
    if not shape_ok or values.dtype.kind not in kinds or 0 in values.shape:
        expected = "(H, W)" if ndim == 2 else f"(H, W, {channels})"
        raise ConversionError(
            f"{what}: expected a non-empty {expected} array of dtype kind {kinds!r}, "
            f"got shape {values.shape} dtype {values.dtype}"
        )


def _checked_rgb(rgb: np.ndarray, what: str) -> np.ndarray:
    """`rgb` as a C-contiguous (H, W, 3) uint8 array, or ConversionError."""
    rgb = np.asarray(rgb)
    _check_array(rgb, what, 3, "u", channels=3)
    if rgb.dtype != np.uint8:
        raise ConversionError(f"{what}: expected uint8 RGB, got dtype {rgb.dtype}")
    return np.ascontiguousarray(rgb)


def rgb_to_image(rgb: np.ndarray, header: Header, encoding: str = "rgb8") -> Image:
    """Image of an (H, W, 3) uint8 RGB array in `encoding`: rgb8, bgr8, 8UC3 (= bgr8), rgba8 or bgra8 (alpha 255)."""
    rgb = _checked_rgb(rgb, "rgb_to_image")
    if encoding not in _RGB_OUTPUT_ENCODINGS:
        raise _unsupported("output image", encoding, _RGB_OUTPUT_ENCODINGS)
    conversion = _RGB_OUTPUT_ENCODINGS[encoding]
    return _image_message(rgb if conversion is None else cv2.cvtColor(rgb, conversion), encoding, header)


def array_to_image(values: np.ndarray, header: Header) -> Image:
    """32FC1 Image (REP 118: depth in metres, or any per-pixel float map such as confidence) of (H, W) floats."""
    values = np.asarray(values)
    _check_array(values, "array_to_image", 2, "f")
    return _image_message(values.astype(np.float32, copy=False)[..., None], "32FC1", header)


def depth_to_mono16_image(depth: np.ndarray, header: Header) -> Image:
    """16UC1 Image of (H, W) float metres in rounded millimetres.

    0 (invalid) for NaN, Inf, and values that round to <= 0 mm or beyond 65535 mm.
    """
    depth = np.asarray(depth)
    _check_array(depth, "depth_to_mono16_image", 2, "f")
    mm = np.rint(depth.astype(np.float64) * 1000.0)
    valid = np.isfinite(mm) & (mm > 0) & (mm <= np.iinfo(np.uint16).max)
    mm = np.where(valid, mm, 0).astype(np.uint16)
    return _image_message(mm[..., None], "16UC1", header)


def rgb_to_compressed(rgb: np.ndarray, header: Header, fmt: str = "jpeg", quality: int = 90) -> CompressedImage:
    """CompressedImage (jpeg or png) of an (H, W, 3) uint8 RGB array; `quality` (1-100) applies to jpeg.

    `format` follows image_transport's compressed plugin: "rgb8; jpeg compressed bgr8".
    """
    rgb = _checked_rgb(rgb, "rgb_to_compressed")
    if fmt not in _COMPRESSED_FORMATS:
        raise ConversionError(f"compressed format must be one of {sorted(_COMPRESSED_FORMATS)}, got {fmt!r}")
    if not 1 <= quality <= 100:
        raise ConversionError(f"jpeg quality must be in [1, 100], got {quality}")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == "jpeg" else []
    ok, encoded = cv2.imencode(_COMPRESSED_FORMATS[fmt], cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ConversionError(f"OpenCV could not encode a {rgb.shape} uint8 image as {fmt}")
    return new_message(CompressedImage, to_byte_array(encoded), header=header, format=f"rgb8; {fmt} compressed bgr8")
