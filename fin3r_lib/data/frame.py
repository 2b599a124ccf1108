"""`Frame`: one camera image with what is known about it; the unit every frame source yields."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Frame:
    """An RGB image with its time, camera and optional calibration and pose.

    `rgb` is (H, W, 3) uint8. `stamp` is in seconds (ROS time or sequence time); `stamp_ns` holds the
    exact integer nanoseconds where the source records them (bags, frame datasets), and then
    `stamp == stamp_ns / 1e9`. `intrinsics` (3x3) and `distortion` come from a CameraInfo when one was
    paired; `cam_to_world` (4x4, OpenCV axes) from TF or ground truth when known. `depth` (H, W)
    float32 metres along z, aligned to `rgb` (an RGB-D sensor or ground truth; 0 or NaN = invalid),
    when known. `source` names where the frame came from (a file path, or bag and message index),
    so every output can be traced back to its input. `index` is the frame's position in its source
    (an image folder or a frame dataset: unique in it, output files are named by it; a bag: the
    message index in its image stream).
    """

    rgb: np.ndarray
    stamp: float
    camera: str = "camera"
    frame_id: str = ""
    intrinsics: np.ndarray | None = None
    distortion: np.ndarray | None = None
    cam_to_world: np.ndarray | None = None
    index: int = 0
    stamp_ns: int | None = None
    depth: np.ndarray | None = None
    source: str = ""

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the image."""
        return self.rgb.shape[0], self.rgb.shape[1]


@dataclass(frozen=True)
class SkippedFrame:
    """An input item a source could not turn into a Frame (undecodable image, bad message)."""

    source: str  # the file path, or "bag.mcap#<topic>@<index>"
    reason: str
