"""sensor_msgs/CameraInfo <-> CameraModel (K, distortion, size), and intrinsics of resized or cropped images."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from fin3r_lib.models.grid import GridMapping

from .errors import ConversionError

# Distortion model implied by the number of coefficients when only an array is given.
_MODEL_BY_LENGTH = {5: "plumb_bob", 8: "rational_polynomial"}


@dataclass
class CameraModel:
    """Pinhole intrinsics of the images a CameraInfo accompanies: K (3, 3) float64, distortion (N,) float64."""

    K: np.ndarray
    width: int
    height: int
    distortion: np.ndarray = field(default_factory=lambda: np.zeros(5))
    distortion_model: str = "plumb_bob"
    frame_id: str = ""

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the images."""
        return self.height, self.width


def _checked_k(k: np.ndarray, what: str) -> np.ndarray:
    k = np.asarray(k, dtype=np.float64)
    if k.shape != (3, 3) or not np.isfinite(k).all():
        raise ConversionError(f"{what}: expected a finite 3x3 intrinsics matrix, got shape {k.shape}: {k.tolist()}")
    if not np.any(k):
        raise ConversionError(f"{what}: K is all zero (an uncalibrated camera); expected fx, fy > 0")
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise ConversionError(f"{what}: expected fx, fy > 0, got fx={k[0, 0]}, fy={k[1, 1]}")
    return k


def camera_info_to_model(msg: CameraInfo) -> CameraModel:
    """CameraModel of the images a CameraInfo describes (its ROI and binning applied to K and the size).

    Raises ConversionError for a zero size, a K that is all zero (uncalibrated) or not finite, and an
    ROI outside the sensor.
    """
    if msg.width == 0 or msg.height == 0:
        raise ConversionError(f"camera_info size must be non-zero, got {msg.width}x{msg.height} (width x height)")
    k = _checked_k(np.asarray(msg.k, dtype=np.float64).reshape(3, 3), "camera_info")
    h, w = msg.height, msg.width
    roi = msg.roi
    if roi.width and roi.height:
        k = scale_intrinsics(
            k, (h, w), (roi.height, roi.width), crop=(roi.y_offset, roi.x_offset, roi.height, roi.width)
        )
        h, w = roi.height, roi.width
    bx, by = max(msg.binning_x, 1), max(msg.binning_y, 1)
    if bx > 1 or by > 1:
        k = scale_intrinsics(k, (h, w), (h // by, w // bx), crop=(0, 0, h // by * by, w // bx * bx))
        h, w = h // by, w // bx
    return CameraModel(
        K=k,
        width=w,
        height=h,
        distortion=np.asarray(msg.d, dtype=np.float64),
        distortion_model=msg.distortion_model,
        frame_id=msg.header.frame_id,
    )


def model_to_camera_info(
    model: CameraModel | np.ndarray,
    width: int | None = None,
    height: int | None = None,
    header: Header | None = None,
    distortion: np.ndarray | None = None,
) -> CameraInfo:
    """CameraInfo of a CameraModel, or of a K with `width`, `height` and optional `distortion` coefficients.

    R is identity and P = [K | 0] (a monocular, unrectified camera). Without `header` the message's
    frame_id is the model's. A bare K gets "plumb_bob" (5 coefficients, zeros when none are given) or
    "rational_polynomial" (8).
    """
    if isinstance(model, CameraModel):
        if width is not None or height is not None or distortion is not None:
            raise ConversionError(
                "model_to_camera_info: width, height and distortion come from the CameraModel; "
                f"expected none of them, got {width=} {height=} distortion={distortion}"
            )
    else:
        if width is None or height is None:
            raise ConversionError(f"model_to_camera_info: a bare K needs width and height, got {width=} {height=}")
        coeffs = np.zeros(5) if distortion is None else np.asarray(distortion, dtype=np.float64).ravel()
        if len(coeffs) not in _MODEL_BY_LENGTH:
            raise ConversionError(
                f"model_to_camera_info: expected 5 (plumb_bob) or 8 (rational_polynomial) distortion "
                f"coefficients, got {len(coeffs)}; pass a CameraModel to name another model"
            )
        model = CameraModel(
            K=model, width=width, height=height, distortion=coeffs, distortion_model=_MODEL_BY_LENGTH[len(coeffs)]
        )
    if model.width <= 0 or model.height <= 0:
        raise ConversionError(f"camera_info size must be non-zero, got {model.width}x{model.height} (width x height)")
    k = _checked_k(model.K, "model_to_camera_info")
    p = np.zeros((3, 4))
    p[:, :3] = k
    msg = CameraInfo(header=header if header is not None else Header(frame_id=model.frame_id))
    msg.width, msg.height = int(model.width), int(model.height)
    msg.distortion_model = model.distortion_model
    msg.d = np.asarray(model.distortion, dtype=np.float64).tolist()
    msg.k = k.ravel().copy()
    msg.r = np.eye(3).ravel()
    msg.p = p.ravel()
    return msg


def check_camera_info_matches(model: CameraModel, image_size: tuple[int, int]) -> None:
    """Raise ConversionError unless the camera model's size equals the image's (height, width)."""
    h, w = image_size
    if (model.height, model.width) != (h, w):
        raise ConversionError(f"camera_info is {model.width}x{model.height} but image is {w}x{h}")


def scale_intrinsics(
    k: np.ndarray,
    from_size: tuple[int, int],
    to_size: tuple[int, int],
    crop: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """K (3, 3) of an image of `from_size` (h, w) after an optional crop (y0, x0, h, w), then a resize to `to_size`.

    Pixel centres at integer coordinates, half-pixel resize convention (OpenCV, and `GridMapping`).
    """
    k = _checked_k(k, "scale_intrinsics")
    src_h, src_w = from_size
    y0, x0, ch, cw = crop if crop is not None else (0, 0, src_h, src_w)
    if min(src_h, src_w, to_size[0], to_size[1], ch, cw) <= 0 or y0 < 0 or x0 < 0 or y0 + ch > src_h or x0 + cw > src_w:
        raise ConversionError(
            f"scale_intrinsics: expected positive sizes and a crop (y0, x0, h, w) inside the {src_h}x{src_w} "
            f"(h x w) source, got crop {(y0, x0, ch, cw)} and target {tuple(to_size)}"
        )
    cropped = k.copy()
    cropped[0, 2] -= x0
    cropped[1, 2] -= y0
    mapping = GridMapping(input_size=(ch, cw), resized_size=tuple(to_size), model_size=tuple(to_size))
    return mapping.intrinsics_to_model(cropped)
