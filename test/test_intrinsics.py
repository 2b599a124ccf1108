"""The camera's K rescaled to the output grid, and the model-vs-camera focal ratio for diagnostics."""

import numpy as np
import pytest

from fin3r_ros.conversions.camera_info import CameraModel
from fin3r_ros.conversions.errors import ConversionError
from fin3r_ros.intrinsics import camera_k_on_grid, focal_ratio, focal_ratio_diagnostics

K = np.array([[585.0, 0, 320.0], [0, 585.0, 240.0], [0, 0, 1]])


def test_camera_k_follows_a_resize_with_pixel_centres_at_integers():
    k = camera_k_on_grid(CameraModel(K=K, width=640, height=480), (120, 160))
    # a 4x downscale maps input pixel u to (u + 0.5) / 4 - 0.5
    np.testing.assert_allclose(k, [[585 / 4, 0, (320.5 / 4) - 0.5], [0, 585 / 4, (240.5 / 4) - 0.5], [0, 0, 1]])


def test_focal_ratio_reports_how_far_the_model_guess_is():
    predicted = K.copy()
    predicted[0, 0], predicted[1, 1] = 79.0, 180.0
    assert focal_ratio(predicted, K) == pytest.approx((79 / 585, 180 / 585))
    assert focal_ratio_diagnostics(K, K) == {
        "predicted_fx_over_camera_fx": "1.0000",
        "predicted_fy_over_camera_fy": "1.0000",
    }
    with pytest.raises(ConversionError, match="fx, fy > 0"):
        focal_ratio(K, np.zeros((3, 3)))
