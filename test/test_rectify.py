"""rectify: distorted camera images undistorted to the pinhole camera with the same K; warning text."""

import cv2
import numpy as np
import pytest

from fin3r_ros.conversions.camera_info import CameraModel
from fin3r_ros.conversions.errors import ConversionError
from fin3r_ros.rectify import Rectifier, distortion_warning, is_distorted

K = np.array([[300.0, 0, 160], [0, 310.0, 120], [0, 0, 1]])


def _blob_image(uv: np.ndarray, size=(240, 320)) -> np.ndarray:
    img = np.zeros(size, np.uint8)
    cv2.circle(img, (round(uv[0]), round(uv[1])), 3, 255, -1)
    return cv2.GaussianBlur(img, (7, 7), 0)


def _centroid(img: np.ndarray) -> np.ndarray:
    w = img.astype(np.float64)
    v, u = np.mgrid[: img.shape[0], : img.shape[1]]
    return np.array([(u * w).sum() / w.sum(), (v * w).sum() / w.sum()])


@pytest.mark.parametrize(
    ("model", "d"),
    [("plumb_bob", [-0.3, 0.1, 0.001, -0.002, 0.0]), ("equidistant", [0.1, -0.05, 0.01, 0.0])],
)
def test_a_point_seen_through_distortion_lands_on_its_pinhole_pixel(model, d):
    d = np.array(d)
    camera = CameraModel(K=K, width=320, height=240, distortion=d, distortion_model=model, frame_id="cam")
    point = np.array([[0.35, -0.25, 1.0]])  # towards a corner, where distortion is large
    if model == "equidistant":
        distorted = cv2.fisheye.projectPoints(point[None], np.zeros(3), np.zeros(3), K, d)[0][0, 0]
    else:
        distorted = cv2.projectPoints(point, np.zeros(3), np.zeros(3), K, d)[0][0, 0]
    pinhole = (K @ point[0])[:2] / point[0, 2]
    assert np.linalg.norm(distorted - pinhole) > 5  # the distortion is visible
    rectified = Rectifier()(_blob_image(distorted), camera)
    assert np.linalg.norm(_centroid(rectified) - pinhole) < 1.0


def test_undistorted_camera_passes_images_through_and_warning_names_the_fix():
    camera = CameraModel(K=K, width=320, height=240)
    img = np.arange(240 * 320, dtype=np.uint16).reshape(240, 320)
    assert Rectifier()(img, camera) is img and not is_distorted(camera)
    distorted = CameraModel(K=K, width=320, height=240, distortion=np.array([0.1, 0, 0, 0, 0]), frame_id="cam")
    assert "image_rect" in distortion_warning(distorted) and "rectify: true" in distortion_warning(distorted)


def test_size_mismatch_and_unknown_model_are_refused():
    camera = CameraModel(K=K, width=320, height=240, distortion=np.array([0.1, 0, 0, 0, 0]))
    with pytest.raises(ConversionError, match="camera_info is 320x240 but image is 100x50"):
        Rectifier()(np.zeros((50, 100), np.uint8), camera)
    odd = CameraModel(K=K, width=320, height=240, distortion=np.array([0.1, 0]), distortion_model="kannala")
    with pytest.raises(ConversionError, match="got 'kannala' with 2"):
        Rectifier()(np.zeros((240, 320), np.uint8), odd)
