"""Image messages to arrays: colour to RGB uint8, depth to float32 metres; and the inline executor.

Compressed images decode on a thread pool (OpenCV releases the GIL); raw images are converted in the
reading thread (`Inline`), where threads only added overhead, and may be read-only views of the
message buffer.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.image import ImageError, message_to_cvimage

from fin3r_lib.data.bag_messages import stamp_ns
from fin3r_lib.data.bag_report import BagError

# Depth encodings and their stored units per metre (REP 118: 16-bit millimetres, float metres).
DEPTH_SCALE = {"16UC1": 1000.0, "mono16": 1000.0, "32FC1": 1.0}


@dataclass
class Decoded:
    """An image message's stamp, frame and pixels (None, with `error`, when the payload is undecodable)."""

    stamp_ns: int
    frame_id: str
    pixels: np.ndarray | None
    error: str = ""


def decode_colour(reader: AnyReader, raw: bytes, msgtype: str, topic: str) -> Decoded:
    """Deserialize an image message and convert it to RGB uint8 (runs on the decode pool)."""
    msg = reader.deserialize(raw, msgtype)
    try:
        rgb = message_to_cvimage(msg, "rgb8")
    except ImageError as exc:
        encoding = getattr(msg, "encoding", getattr(msg, "format", "?"))
        raise BagError(f"{topic}: cannot convert {encoding!r} images to RGB ({exc})") from exc
    except (AssertionError, ValueError, TypeError, cv2.error) as exc:  # a corrupted compressed payload
        return Decoded(stamp_ns(msg.header), msg.header.frame_id, None, f"{topic}: undecodable image: {exc}")
    if rgb.dtype != np.uint8 or rgb.ndim != 3:
        raise BagError(f"{topic}: expected a colour uint8 image, got {rgb.dtype} {rgb.shape}")
    return Decoded(stamp_ns(msg.header), msg.header.frame_id, rgb)


def decode_depth(reader: AnyReader, raw: bytes, msgtype: str, topic: str) -> Decoded:
    """A depth Image as float32 metres along z (stored value / scale, as the dataset readers do), NaN where
    invalid (0 or non-finite)."""
    msg = reader.deserialize(raw, msgtype)
    if msg.encoding not in DEPTH_SCALE:
        raise BagError(f"{topic}: expected depth images encoded {sorted(DEPTH_SCALE)}, got {msg.encoding!r}")
    try:
        raw_depth = message_to_cvimage(msg)
    except (ImageError, ValueError) as exc:
        return Decoded(stamp_ns(msg.header), msg.header.frame_id, None, f"{topic}: undecodable depth image: {exc}")
    depth = raw_depth.astype(np.float32) / np.float32(DEPTH_SCALE[msg.encoding])
    depth[~(np.isfinite(depth) & (depth > 0))] = np.nan
    return Decoded(stamp_ns(msg.header), msg.header.frame_id, depth)


class Ready:
    """The outcome of a task already run: the part of `Future` that the frame reader uses, without its lock."""

    __slots__ = ("_error", "_value")

    def __init__(self, value=None, error: Exception | None = None) -> None:
        self._value, self._error = value, error

    def done(self) -> bool:
        """Always True: the task has run."""
        return True

    def result(self):
        """The task's value, or its exception raised again."""
        if self._error is not None:
            raise self._error
        return self._value


class Inline:
    """Executor stand-in that runs each task at once in the calling thread."""

    def __enter__(self) -> Inline:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def submit(self, fn, *args) -> Ready:
        """Run `fn(*args)` now."""
        try:
            return Ready(fn(*args))
        except Exception as exc:
            return Ready(error=exc)
