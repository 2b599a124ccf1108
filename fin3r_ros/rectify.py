"""Distorted input: a one-time warning (rectify: false) or OpenCV undistortion before the model (rectify: true).

The model assumes a pinhole camera. With `rectify: true` an image of a camera with non-zero distortion
is remapped to the pinhole camera with the same K (plumb_bob / rational_polynomial through
cv2.initUndistortRectifyMap, equidistant through cv2.fisheye); the maps are computed once per camera.
An aligned sensor depth image (registered to the colour camera) is brought to the image's size with
`fit_depth` and, with `rectify: true`, remapped with the same maps (`Rectifier.depth`). Both take the
nearest pixel, never a blend: interpolating across a depth edge would invent depths between surfaces.
"""

from __future__ import annotations

import cv2
import numpy as np

from fin3r_lib.geometry import resize_nearest
from fin3r_ros.conversions.camera_info import CameraModel
from fin3r_ros.conversions.errors import ConversionError

PINHOLE_MODELS = ("plumb_bob", "rational_polynomial")
FISHEYE_MODELS = ("equidistant",)
#: relative aspect-ratio difference beyond which a depth image is not the colour image's view
ASPECT_TOLERANCE = 0.01


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


def fit_depth(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Aligned depth (H', W') at the image's `size` (h, w), nearest pixel by pixel centres.

    (`fin3r_lib.geometry.resize_nearest`). ConversionError when the aspect ratios differ by more than
    `ASPECT_TOLERANCE` (not the same view).
    """
    if depth.shape == tuple(size):
        return depth
    (h, w), (dh, dw) = size, depth.shape
    if abs((dw / dh) / (w / h) - 1.0) > ASPECT_TOLERANCE:
        raise ConversionError(f"sensor depth: expected the image's aspect ratio ({w}x{h}) at any size, got {dw}x{dh}")
    return resize_nearest(depth, size)


class Rectifier:
    """Undistorts images of the cameras it is given, to the pinhole camera with the same K."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._maps: tuple[np.ndarray, np.ndarray] | None = None

    def __call__(self, image: np.ndarray, camera: CameraModel) -> np.ndarray:
        """`image` (H, W[, C]) undistorted; returned as is when the camera has no distortion."""
        if not is_distorted(camera):
            return image
        return cv2.remap(image, *self._maps_of(image, camera), cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)

    def depth(self, depth: np.ndarray, camera: CameraModel) -> np.ndarray:
        """Aligned depth (H, W) float32 (NaN invalid) undistorted with the image's maps, nearest pixel (NaN outside)."""
        if not is_distorted(camera):
            return depth
        maps = self._maps_of(depth, camera)
        return cv2.remap(depth, *maps, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=float("nan"))

    def _maps_of(self, image: np.ndarray, camera: CameraModel) -> tuple[np.ndarray, np.ndarray]:
        """The remap maps of `camera` (built once per camera); ConversionError when `image` is not its size."""
        if image.shape[:2] != camera.size:
            raise ConversionError(
                f"rectify: camera_info is {camera.width}x{camera.height} but image is {image.shape[1]}x{image.shape[0]}"
            )
        key = (camera.size, camera.distortion_model, camera.K.tobytes(), np.asarray(camera.distortion).tobytes())
        if key != self._key or self._maps is None:
            self._maps = self._build(camera)
            self._key = key
        return self._maps

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
