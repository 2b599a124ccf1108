"""Messages built by the conversions cross real rclpy (publisher node -> subscriber node) and convert back."""

from __future__ import annotations

import numpy as np
import pytest
from conversion_samples import random_rigid, raw_image, smooth_rgb
from geometry_msgs.msg import PoseStamped
from ros_harness import RosHarness
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage

from fin3r_ros.conversions import (
    array_to_image,
    camera_info_to_model,
    cloud_to_arrays,
    compressed_to_rgb,
    depth_image_to_array,
    image_to_rgb,
    matrix_to_pose,
    matrix_to_transform,
    model_to_camera_info,
    points_to_cloud,
    pose_to_matrix,
    rgb_to_compressed,
    rgb_to_image,
    seconds_to_stamp,
    stamp_to_seconds,
    transform_to_matrix,
)

RNG = np.random.default_rng(21)
RGB = RNG.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
STAMP = 1_700_000_123.25


@pytest.fixture(scope="module")
def ros():
    with RosHarness() as harness:
        yield harness


def header(frame_id: str = "camera_optical") -> Header:
    return Header(frame_id=frame_id, stamp=seconds_to_stamp(STAMP))


def test_images_of_every_encoding_come_back_pixel_exact(ros):
    grey = RGB[..., 1]
    sent = [rgb_to_image(RGB, header(), enc) for enc in ("rgb8", "bgr8", "8UC3", "rgba8", "bgra8")]
    sent += [raw_image(grey, "mono8", pad=3), raw_image(grey.astype(np.uint16) * 257, "mono16", bigendian=True)]
    sent += [raw_image(RGB[..., ::-1], "bgr8", pad=5)]
    received = ros.exchange(Image, sent)
    assert [m.encoding for m in received] == [m.encoding for m in sent]
    for msg in received[:5] + received[-1:]:
        assert np.array_equal(image_to_rgb(msg), RGB), msg.encoding
    for msg in received[5:7]:
        assert np.array_equal(image_to_rgb(msg), np.repeat(grey[..., None], 3, axis=-1)), msg.encoding
    assert stamp_to_seconds(received[0].header.stamp) == STAMP and received[0].header.frame_id == "camera_optical"


def test_depth_images_come_back_exact(ros):
    depth = RNG.uniform(0.3, 8.0, size=(48, 64)).astype(np.float32)
    depth[0, :5] = np.nan
    mm = RNG.integers(0, 9000, size=(48, 64), dtype=np.uint16)
    received = ros.exchange(Image, [array_to_image(depth, header()), raw_image(mm, "16UC1", pad=2)])
    assert np.array_equal(depth_image_to_array(received[0]), depth, equal_nan=True)
    metres = depth_image_to_array(received[1])
    assert np.array_equal(np.isnan(metres), mm == 0)
    assert np.array_equal(np.rint(metres[mm > 0].astype(np.float64) * 1000), mm[mm > 0])


def test_compressed_images_png_exact_jpeg_close(ros):
    smooth = smooth_rgb(RNG, 48, 64)
    png, jpeg = ros.exchange(
        CompressedImage, [rgb_to_compressed(RGB, header(), "png"), rgb_to_compressed(smooth, header(), "jpeg", 90)]
    )
    assert np.array_equal(compressed_to_rgb(png), RGB)
    error = compressed_to_rgb(jpeg).astype(float) - smooth
    assert 10 * np.log10(255.0**2 / np.mean(error**2)) > 30.0 and np.abs(error).mean() < 6.0


def test_camera_info_comes_back(ros):
    k = np.array([[525.0, 0.0, 319.5], [0.0, 525.0, 239.5], [0.0, 0.0, 1.0]])
    dist = np.array([0.2, -0.5, 0.001, -0.002, 0.3])
    (msg,) = ros.exchange(CameraInfo, [model_to_camera_info(k, 640, 480, header(), distortion=dist)])
    model = camera_info_to_model(msg)
    assert np.array_equal(model.K, k) and np.array_equal(model.distortion, dist)
    assert (model.size, model.distortion_model, model.frame_id) == ((480, 640), "plumb_bob", "camera_optical")


@pytest.mark.parametrize("layout", ["pcl", "compact"])
def test_point_clouds_come_back_with_the_same_points(ros, layout):
    points = RNG.normal(size=(48, 64, 3)).astype(np.float32)
    points[5:9, 10:20] = np.nan
    confidence = RNG.uniform(1, 5, size=(48, 64)).astype(np.float32)
    flat = RNG.normal(size=(1000, 3)).astype(np.float32)
    sent = [
        points_to_cloud(points, header(), rgb=RGB, fields={"confidence": confidence}, layout=layout),
        points_to_cloud(flat, header("map"), layout=layout),
    ]
    organized, unorganized = ros.exchange(PointCloud2, sent)
    assert (organized.height, organized.width, organized.is_dense) == (48, 64, False)
    out = cloud_to_arrays(organized)
    assert np.array_equal(out["points"], points, equal_nan=True)
    assert np.array_equal(out["rgb"], RGB) and np.array_equal(out["confidence"], confidence)
    assert unorganized.is_dense and np.array_equal(cloud_to_arrays(unorganized)["points"], flat)


def test_tf_and_poses_round_trip_to_1e_9(ros):
    matrices = [random_rigid(RNG) for _ in range(4)]
    tf = TFMessage(transforms=[matrix_to_transform(t, header("map"), f"frame_{i}") for i, t in enumerate(matrices)])
    (received_tf,) = ros.exchange(TFMessage, [tf])
    assert [t.child_frame_id for t in received_tf.transforms] == [f"frame_{i}" for i in range(4)]
    for msg, t in zip(received_tf.transforms, matrices, strict=True):
        np.testing.assert_allclose(transform_to_matrix(msg), t, rtol=0, atol=1e-9)
    poses = ros.exchange(PoseStamped, [matrix_to_pose(t, header("map")) for t in matrices])
    for msg, t in zip(poses, matrices, strict=True):
        np.testing.assert_allclose(pose_to_matrix(msg), t, rtol=0, atol=1e-9)
        assert stamp_to_seconds(msg.header.stamp) == STAMP


def test_multithreaded_harness_delivers_too():
    with RosHarness(executor="multi", threads=2) as harness:
        (msg,) = harness.exchange(Image, [rgb_to_image(RGB, header())])
    assert np.array_equal(image_to_rgb(msg), RGB)
