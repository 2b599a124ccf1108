"""Distorted input: a one-time warning (rectify: false) or OpenCV undistortion before the model (rectify: true).

The model assumes a pinhole camera. With `rectify: true` an image of a camera with non-zero distortion
is remapped to the pinhole camera with the same K (plumb_bob / rational_polynomial through
cv2.initUndistortRectifyMap, equidistant through cv2.fisheye); the maps are computed once per camera.
"""

from __future__ import annotations

import cv2
import numpy as np

from fin3r_ros.conversions.camera_info import CameraModel
from fin3r_ros.conversions.errors import ConversionError

PINHOLE_MODELS = ("plumb_bob", "rational_polynomial")
FISHEYE_MODELS = ("equidistant",)


def is_distorted(camera: CameraModel) -> bool:
    """Whether the camera has any non-zero distortion coefficient."""
    return bool(np.any(np.asarray(camera.distortion) != 0))


def distortion_warning(camera: CameraModel) -> str:
    """The one-line warning for distorted input with rectify: false."""
    return (
        f"camera_info of {camera.frame_id or 'the camera'} has non-zero distortion "
        f"({camera.distortion_model}, D={np.round(camera.distortion, 4).tolist()}); the node expects rectified "
        "images (subscribe to image_rect, or set rectify: true)"
    )


class Rectifier:
    """Undistorts images of the cameras it is given, to the pinhole camera with the same K."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._maps: tuple[np.ndarray, np.ndarray] | None = None

    def __call__(self, image: np.ndarray, camera: CameraModel) -> np.ndarray:
        """`image` (H, W[, C]) undistorted; returned as is when the camera has no distortion."""
        if not is_distorted(camera):
            return image
        if image.shape[:2] != camera.size:
            raise ConversionError(
                f"rectify: camera_info is {camera.width}x{camera.height} but image is {image.shape[1]}x{image.shape[0]}"
            )
        key = (camera.size, camera.distortion_model, camera.K.tobytes(), np.asarray(camera.distortion).tobytes())
        if key != self._key:
            self._maps = self._build(camera)
            self._key = key
        return cv2.remap(image, *self._maps, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)

    @staticmethod
    def _build(camera: CameraModel) -> tuple[np.ndarray, np.ndarray]:
        size = (camera.width, camera.height)
        d = np.asarray(camera.distortion, dtype=np.float64)
        if camera.distortion_model in PINHOLE_MODELS:
            return cv2.initUndistortRectifyMap(camera.K, d, None, camera.K, size, cv2.CV_32FC1)
        if camera.distortion_model in FISHEYE_MODELS and d.size == 4:
            return cv2.fisheye.initUndistortRectifyMap(camera.K, d, np.eye(3), camera.K, size, cv2.CV_32FC1)
        raise ConversionError(
            f"rectify: expected distortion model {PINHOLE_MODELS + FISHEYE_MODELS} (equidistant with 4 "
            f"coefficients), got {camera.distortion_model!r} with {d.size}"
        )
