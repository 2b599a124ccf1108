"""Real 7-Scenes RGB-D frames through the conversions: depth encodings and depth + K -> organized cloud."""

from __future__ import annotations

import numpy as np
from conversion_samples import raw_image
from ros_harness import RosHarness
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Header

from fin3r_lib.geometry import unproject_depth
from fin3r_ros.conversions import (
    array_to_image,
    camera_info_to_model,
    cloud_to_arrays,
    depth_image_to_array,
    depth_to_mono16_image,
    model_to_camera_info,
    points_to_cloud,
)


def test_depth_16uc1_to_32fc1_and_back_is_exact_on_every_frame(seven_scenes):
    for mm in seven_scenes["depth_mm"]:
        metres = depth_image_to_array(raw_image(mm, "16UC1"))
        assert np.array_equal(np.isnan(metres), mm == 0)
        as_32fc1 = array_to_image(metres, Header(frame_id="kinect_optical"))
        back = depth_to_mono16_image(depth_image_to_array(as_32fc1), Header())
        assert np.array_equal(np.frombuffer(back.data, np.uint16).reshape(mm.shape), mm)


def test_depth_crosses_rclpy_as_16uc1_and_32fc1(seven_scenes):
    mm = seven_scenes["depth_mm"][0]
    with RosHarness() as ros:
        (raw,) = ros.exchange(Image, [raw_image(mm, "16UC1")])
        metres = depth_image_to_array(raw)
        (float_image,) = ros.exchange(Image, [array_to_image(metres, raw.header)])
    assert float_image.encoding == "32FC1"
    assert np.array_equal(depth_image_to_array(float_image), metres, equal_nan=True)


def test_depth_and_k_give_an_organized_cloud_that_reprojects_to_its_pixels(seven_scenes):
    k = camera_info_to_model(model_to_camera_info(seven_scenes["K"], 640, 480, Header())).K
    for index in (0, 25, 49):
        depth = depth_image_to_array(raw_image(seven_scenes["depth_mm"][index], "16UC1"))
        rgb = seven_scenes["rgb"][index]
        with RosHarness() as ros:
            (msg,) = ros.exchange(PointCloud2, [points_to_cloud(unproject_depth(depth, k), Header(), rgb=rgb)])
        assert (msg.height, msg.width, msg.is_dense) == (480, 640, False)
        cloud = cloud_to_arrays(msg)
        points = cloud["points"].astype(np.float64)
        valid = np.isfinite(points).all(axis=-1)
        assert np.array_equal(valid, np.isfinite(depth)) and valid.mean() > 0.5
        x, y, z = points[valid].T
        v, u = np.nonzero(valid)
        np.testing.assert_allclose(k[0, 0] * x / z + k[0, 2], u, atol=1e-3)
        np.testing.assert_allclose(k[1, 1] * y / z + k[1, 2], v, atol=1e-3)
        np.testing.assert_allclose(z, depth[valid], rtol=1e-6)
        assert np.array_equal(cloud["rgb"], rgb)
