"""rectify: distorted camera images undistorted to the pinhole camera with the same K; warning text."""

import cv2
import numpy as np
import pytest

from fin3r_ros.conversions.camera_info import CameraModel
from fin3r_ros.conversions.errors import ConversionError
from fin3r_ros.rectify import Rectifier, distortion_warning, fit_depth, is_distorted

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


def _indexed(h: int, w: int) -> np.ndarray:
    """Depth whose value names its pixel: row * 1000 + column (exact in float32)."""
    v, u = np.mgrid[:h, :w]
    return (v * 1000 + u).astype(np.float32)


@pytest.mark.parametrize(("src", "dst"), [((240, 320), (480, 640)), ((480, 640), (240, 320)), ((300, 400), (480, 640))])
def test_sensor_depth_of_another_size_takes_the_nearest_pixel_by_centres(src, dst):
    out = fit_depth(_indexed(*src), dst)
    assert out.shape == dst and out.dtype == np.float32
    # output pixel centre x + 0.5 lies at (x + 0.5) * W'/w in the input's edge coordinates: that input pixel
    rows = np.floor((np.arange(dst[0]) + 0.5) * src[0] / dst[0]).astype(int)
    cols = np.floor((np.arange(dst[1]) + 0.5) * src[1] / dst[1]).astype(int)
    np.testing.assert_array_equal(out, rows[:, None] * 1000 + cols[None, :])
    same = _indexed(*dst)
    assert fit_depth(same, dst) is same


def test_sensor_depth_of_another_view_is_refused():
    with pytest.raises(
        ConversionError, match=r"expected the image's aspect ratio \(640x480\) at any size, got 640x360"
    ):
        fit_depth(np.ones((360, 640), np.float32), (480, 640))


def _distorted_source(u: np.ndarray, v: np.ndarray, k: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the pinhole pixel (u, v) was seen through plumb_bob distortion `d` (Brown-Conrady, by hand)."""
    x, y = (u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1]
    k1, k2, p1, p2, k3 = d
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return k[0, 0] * xd + k[0, 2], k[1, 1] * yd + k[1, 2]


def test_sensor_depth_is_undistorted_with_the_image_maps_nearest():
    d = np.array([0.25, 0.05, 0.001, -0.002, 0.0])  # pincushion: the corners were seen by no sensor pixel
    camera = CameraModel(K=K, width=320, height=240, distortion=d, distortion_model="plumb_bob", frame_id="cam")
    out = Rectifier().depth(_indexed(240, 320), camera)
    v, u = np.mgrid[:240, :320].astype(np.float64)
    xs, ys = _distorted_source(u, v, K, d)
    inside = (xs > -0.49) & (xs < 319.49) & (ys > -0.49) & (ys < 239.49)
    margin = (xs < -0.51) | (xs > 319.51) | (ys < -0.51) | (ys > 239.51)
    assert inside.mean() > 0.8 and margin.any()
    assert np.isnan(out[margin]).all()  # seen by no sensor pixel: invalid, not a border copy
    got = out[inside]
    row, col = np.floor_divide(got, 1000), np.mod(got, 1000)
    # a pixel's value is one sensor pixel's (no blend), the one nearest to where the pinhole ray was seen
    np.testing.assert_array_equal(row * 1000 + col, got)
    assert np.abs(col - xs[inside]).max() <= 0.5 + 1e-3 and np.abs(row - ys[inside]).max() <= 0.5 + 1e-3
    assert np.median(np.abs(col - xs[inside])) > 0.1  # the distortion moved pixels by fractions too
    plain = CameraModel(K=K, width=320, height=240)
    depth = _indexed(240, 320)
    assert Rectifier().depth(depth, plain) is depth


def test_robot_inputs_resize_then_undistort_the_paired_depth():
    """Through the node's input stage (real rclpy node): 320x240 depth for 640x480 images, rectify: true."""
    from ros_harness import RosHarness
    from std_msgs.msg import Header

    from fin3r_ros.conversions import array_to_image, model_to_camera_info
    from fin3r_ros.parameters import default_values
    from fin3r_ros.robot_inputs import RobotInputs

    k = np.array([[600.0, 0, 320], [0, 620.0, 240], [0, 0, 1]])
    d = np.array([0.25, 0.05, 0.001, -0.002, 0.0])
    header = Header(frame_id="cam")
    info = model_to_camera_info(k, 640, 480, header, distortion=d)
    paired = {"camera_info": info, "depth": array_to_image(_indexed(240, 320), header)}
    rgb = np.zeros((480, 640, 3), np.uint8)
    with RosHarness() as ros:
        inputs = RobotInputs(ros.node("inputs"), default_values() | {"scale_source": "depth", "rectify": True})
        _, fields = inputs.frame_fields(rgb, paired, "cam", 0)
        assert inputs.diagnostics()["sensor depth resized"] == "1"
    depth = fields["depth"]
    assert depth.shape == (480, 640)
    v, u = np.mgrid[:480, :640].astype(np.float64)
    xs, ys = _distorted_source(u, v, k, d)  # where the 640x480 pinhole pixel was seen
    seen = ~np.isnan(depth)
    assert seen.mean() > 0.8 and not seen.all()
    row, col = np.floor_divide(depth[seen], 1000), np.mod(depth[seen], 1000)
    # the nearest 640x480 pixel round(xs), then the 320x240 pixel holding it: round(xs) // 2
    clear = (np.abs(np.mod(xs[seen], 1) - 0.5) > 0.01) & (np.abs(np.mod(ys[seen], 1) - 0.5) > 0.01)
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(col[clear], np.round(xs[seen][clear]) // 2)
    np.testing.assert_array_equal(row[clear], np.round(ys[seen][clear]) // 2)
    assert np.abs(2 * col + 0.5 - xs[seen]).max() <= 1.0 + 1e-3
