"""CameraInfo <-> CameraModel, and intrinsics of resized / cropped images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, RegionOfInterest
from std_msgs.msg import Header

from fin3r_ros.conversions import (
    CameraModel,
    ConversionError,
    camera_info_to_model,
    check_camera_info_matches,
    model_to_camera_info,
    scale_intrinsics,
)

K = np.array([[585.0, 0.5, 320.0], [0.0, 580.0, 240.0], [0.0, 0.0, 1.0]])


def project(k: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Pixel coordinates (N, 2) of camera-frame points (N, 3)."""
    uvw = points @ k.T
    return uvw[:, :2] / uvw[:, 2:]


POINTS = np.random.default_rng(3).uniform([-1, -1, 1], [1, 1, 5], size=(20, 3))


def test_model_round_trips_through_camera_info():
    model = CameraModel(
        K=K,
        width=640,
        height=480,
        distortion=np.array([0.1, -0.2, 0.001, 0.002, 0.03, 0.0, 0.0, 0.01]),
        distortion_model="rational_polynomial",
        frame_id="cam_optical",
    )
    msg = model_to_camera_info(model)
    assert (msg.width, msg.height, msg.header.frame_id) == (640, 480, "cam_optical")
    assert np.array_equal(np.reshape(msg.p, (3, 4)), np.hstack([K, np.zeros((3, 1))]))
    assert np.array_equal(np.reshape(msg.r, (3, 3)), np.eye(3))
    back = camera_info_to_model(msg)
    assert np.array_equal(back.K, K) and back.K.dtype == np.float64
    assert np.array_equal(back.distortion, model.distortion) and back.distortion.dtype == np.float64
    assert (back.width, back.height, back.size) == (640, 480, (480, 640))
    assert (back.distortion_model, back.frame_id) == ("rational_polynomial", "cam_optical")


def test_bare_k_gets_plumb_bob_and_the_given_header():
    msg = model_to_camera_info(K, 640, 480, Header(frame_id="left"))
    assert (msg.distortion_model, list(msg.d), msg.header.frame_id) == ("plumb_bob", [0.0] * 5, "left")
    eight = model_to_camera_info(K, 640, 480, Header(), distortion=np.arange(8) * 0.01)
    assert eight.distortion_model == "rational_polynomial" and len(eight.d) == 8


def test_roi_and_binning_give_the_intrinsics_of_the_published_image():
    msg = model_to_camera_info(K, 640, 480, Header())
    msg.roi = RegionOfInterest(x_offset=100, y_offset=40, width=400, height=300)
    cropped = camera_info_to_model(msg)
    assert cropped.size == (300, 400)
    np.testing.assert_allclose(project(cropped.K, POINTS), project(K, POINTS) - [100, 40], atol=1e-9)
    msg.roi = RegionOfInterest()
    msg.binning_x = msg.binning_y = 2
    binned = camera_info_to_model(msg)
    assert binned.size == (240, 320)
    np.testing.assert_allclose(project(binned.K, POINTS), (project(K, POINTS) + 0.5) / 2 - 0.5, atol=1e-9)


def test_scale_intrinsics_follows_the_half_pixel_convention():
    resized = scale_intrinsics(K, (480, 640), (240, 320))
    np.testing.assert_allclose(project(resized, POINTS), (project(K, POINTS) + 0.5) / 2 - 0.5, atol=1e-9)
    assert resized[0, 1] == pytest.approx(K[0, 1] / 2)


def test_scale_intrinsics_of_a_crop_then_resize():
    k = scale_intrinsics(K, (480, 640), (224, 224), crop=(16, 80, 448, 448))
    expected = (project(K, POINTS) - [80, 16] + 0.5) * (224 / 448) - 0.5
    np.testing.assert_allclose(project(k, POINTS), expected, atol=1e-9)


def test_scale_intrinsics_agrees_with_an_opencv_resize():
    # A bright 8x8 block centred on source pixel (303.5, 203.5), shrunk 4x by OpenCV's area resize:
    # its centroid in the small image is where the scaled K projects the 3-D point seen at that centre.
    image = np.zeros((480, 640), np.float32)
    image[200:208, 300:308] = 1.0
    small = cv2.resize(image, (160, 120), interpolation=cv2.INTER_AREA)
    v, u = np.mgrid[0:120, 0:160]
    centroid = np.array([(u * small).sum(), (v * small).sum()]) / small.sum()
    ray = np.linalg.solve(K, [303.5, 203.5, 1.0])
    k = scale_intrinsics(K, (480, 640), (120, 160))
    np.testing.assert_allclose(project(k, ray[None] * 3.0)[0], centroid, atol=1e-6)


def test_check_camera_info_matches():
    model = camera_info_to_model(model_to_camera_info(K, 640, 480, Header()))
    check_camera_info_matches(model, (480, 640))
    with pytest.raises(ConversionError, match=r"^camera_info is 640x480 but image is 320x240$"):
        check_camera_info_matches(model, (240, 320))


# ---- bad input ----


def test_zero_size_camera_info():
    msg = model_to_camera_info(K, 640, 480, Header())
    msg.width = 0
    with pytest.raises(ConversionError, match=r"camera_info size must be non-zero, got 0x480 \(width x height\)"):
        camera_info_to_model(msg)


def test_all_zero_k_is_an_uncalibrated_camera():
    with pytest.raises(
        ConversionError, match=r"camera_info: K is all zero \(an uncalibrated camera\); expected fx, fy > 0"
    ):
        camera_info_to_model(CameraInfo(width=640, height=480))


def test_non_positive_or_non_finite_focal_length():
    msg = model_to_camera_info(K, 640, 480, Header())
    msg.k[4] = -1.0
    with pytest.raises(ConversionError, match=r"expected fx, fy > 0, got fx=585.0, fy=-1.0"):
        camera_info_to_model(msg)
    msg.k[4] = np.nan
    with pytest.raises(ConversionError, match=r"expected a finite 3x3 intrinsics matrix"):
        camera_info_to_model(msg)


def test_model_to_camera_info_rejects_incomplete_or_conflicting_arguments():
    with pytest.raises(ConversionError, match=r"a bare K needs width and height, got width=640 height=None"):
        model_to_camera_info(K, 640)
    with pytest.raises(ConversionError, match=r"expected 5 \(plumb_bob\) or 8 \(rational_polynomial\).* got 4"):
        model_to_camera_info(K, 640, 480, Header(), distortion=np.zeros(4))
    with pytest.raises(
        ConversionError,
        match=r"come from the CameraModel; expected none of them, got width=640 height=480",
    ):
        model_to_camera_info(CameraModel(K=K, width=640, height=480), 640, 480)
    with pytest.raises(ConversionError, match=r"expected a finite 3x3 intrinsics matrix, got shape \(2, 2\)"):
        model_to_camera_info(np.eye(2), 640, 480)


def test_scale_intrinsics_rejects_a_crop_outside_the_source():
    with pytest.raises(
        ConversionError, match=r"crop \(y0, x0, h, w\) inside the 480x640 .* got crop \(0, 600, 100, 100\)"
    ):
        scale_intrinsics(K, (480, 640), (100, 100), crop=(0, 600, 100, 100))
