"""Shared geometry helpers: unprojection and Sim(3) fitting."""

import numpy as np
import pytest

from fin3r_lib.geometry import resize_nearest, sim3_matrix, transform_points, umeyama_sim3, unproject_depth


def test_unproject_depth_reprojects_to_its_pixels():
    k = np.array([[585.0, 0, 320], [0, 585.0, 240], [0, 0, 1]])
    depth = np.random.default_rng(0).uniform(0.5, 4.0, (48, 64))
    pts = unproject_depth(depth, k)
    uvw = pts @ k.T
    v, u = np.mgrid[0:48, 0:64]
    np.testing.assert_allclose(uvw[..., 0] / uvw[..., 2], u, atol=1e-9)
    np.testing.assert_allclose(uvw[..., 1] / uvw[..., 2], v, atol=1e-9)
    np.testing.assert_allclose(pts[..., 2], depth)


def test_unproject_depth_applies_the_pose_and_keeps_nan():
    k = np.array([[100.0, 0, 5], [0, 100.0, 5], [0, 0, 1]])
    depth = np.full((10, 10), 2.0)
    depth[3, 4] = np.nan
    pose = np.eye(4)
    pose[:3, 3] = [1, 2, 3]
    pts = unproject_depth(depth, k, pose)
    assert np.isnan(pts[3, 4]).all()
    np.testing.assert_allclose(pts[5, 5], [1, 2, 5])


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(200, 3))
    angle = 0.7
    r = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    dst = 2.5 * src @ r.T + [0.3, -1.0, 4.0]
    s, r_est, t = umeyama_sim3(src, dst)
    assert abs(s - 2.5) < 1e-9
    np.testing.assert_allclose(r_est, r, atol=1e-9)
    np.testing.assert_allclose(transform_points(src, sim3_matrix(s, r_est, t)), dst, atol=1e-9)


# sizes where no output centre falls exactly on an input pixel edge (OpenCV's fixed point picks one side there)
@pytest.mark.parametrize(("src", "dst"), [((75, 100), (480, 640)), ((480, 640), (64, 128)), ((7, 9), (5, 13))])
def test_resize_nearest_takes_the_input_pixel_under_each_output_pixel_centre(src, dst) -> None:
    values = np.random.default_rng(0).random(src).astype(np.float32)
    # output centre x + 0.5 (edge units) lies at (x + 0.5) * W / w in the input: the pixel containing it
    rows = np.floor((np.arange(dst[0]) + 0.5) * src[0] / dst[0]).astype(int)
    cols = np.floor((np.arange(dst[1]) + 0.5) * src[1] / dst[1]).astype(int)
    np.testing.assert_array_equal(resize_nearest(values, dst), values[rows][:, cols])


def test_resize_nearest_is_not_floor_of_x_times_the_ratio() -> None:
    # 100 -> 640 columns: output column 6 (centre 6.5 of 640) lies in input column 1 (6.5 / 6.4 = 1.016)
    ramp = np.tile(np.arange(100, dtype=np.float32), (75, 1))
    assert resize_nearest(ramp, (480, 640))[0, 6] == 1.0
