"""The few fields extraction needs from ROS 2 `TFMessage` and `CameraInfo`, read straight from CDR bytes.

Building rosbags message objects costs tens of microseconds per TF message (and generating the
deserializers, per opened bag, milliseconds), which dominates reading a log's TF and calibration; these
readers take only what a `TfBuffer` and a calibration need. Little-endian CDR only (what rosbag2 records).
"""

from __future__ import annotations

import struct

import numpy as np

from fin3r_lib.errors import InputError

_U32 = struct.Struct("<I")
_STAMP = struct.Struct("<iI")  # header.stamp.sec, .nanosec
_TRANSFORM = struct.Struct("<7d")  # translation x y z, rotation x y z w

Transform = tuple[str, str, int, tuple[float, float, float], tuple[float, float, float, float]]


class CdrError(InputError):
    """Bytes that are not the little-endian CDR message expected."""


class _Cursor:
    """A read position in a CDR buffer; alignment counts from the end of the 4-byte encapsulation header."""

    def __init__(self, raw: bytes | memoryview) -> None:
        if raw[1] != 1:
            raise CdrError(f"expected little-endian CDR (encapsulation 0x0001), got {bytes(raw[:2]).hex()}")
        self.raw, self.pos = raw, 4

    def take(self, fmt: struct.Struct, align: int) -> tuple:
        self.pos = 4 + -(-(self.pos - 4) // align) * align
        values = fmt.unpack_from(self.raw, self.pos)
        self.pos += fmt.size
        return values

    def string(self) -> str:
        (length,) = self.take(_U32, 4)
        if length < 1 or self.pos + length > len(self.raw):
            raise CdrError(f"string of {length} bytes at byte {self.pos} runs past the {len(self.raw)}-byte message")
        text = bytes(self.raw[self.pos : self.pos + length - 1]).decode()
        self.pos += length
        return text


def _parsed(kind: str, raw: bytes | memoryview, read):
    try:
        return read(_Cursor(raw))
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise CdrError(f"malformed CDR {kind} of {len(raw)} bytes: {exc}") from exc


def _transforms(c: _Cursor) -> list[Transform]:
    out = []
    for _ in range(c.take(_U32, 4)[0]):
        sec, nanosec = c.take(_STAMP, 4)
        parent, child = c.string(), c.string()
        tx, ty, tz, qx, qy, qz, qw = c.take(_TRANSFORM, 8)
        out.append((parent, child, sec * 1_000_000_000 + nanosec, (tx, ty, tz), (qx, qy, qz, qw)))
    return out


def cdr_transforms(raw: bytes | memoryview) -> list[Transform]:
    """(parent, child, stamp in integer ns, translation, quaternion x y z w) of each transform of a CDR TFMessage."""
    return _parsed("TFMessage", raw, _transforms)


def _camera_info(c: _Cursor) -> tuple[np.ndarray, np.ndarray]:
    c.take(_STAMP, 4)
    c.string()  # header.frame_id
    c.take(struct.Struct("<2I"), 4)  # height, width
    c.string()  # distortion_model
    (count,) = c.take(_U32, 4)
    d = np.array(c.take(struct.Struct(f"<{count}d"), 8), dtype=np.float64)
    k = np.array(c.take(struct.Struct("<9d"), 8), dtype=np.float64).reshape(3, 3)
    return k, d


def cdr_camera_info(raw: bytes | memoryview) -> tuple[np.ndarray, np.ndarray]:
    """K (3x3) and distortion coefficients of a CDR sensor_msgs/CameraInfo, float64."""
    return _parsed("CameraInfo", raw, _camera_info)
