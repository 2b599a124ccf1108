"""Reading real bags (MCAP, sqlite3 v8/v9, ROS 1; Humble and Kilted typestores) built from the 7-Scenes frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from bag_fixtures import (
    PERIOD_NS,
    STATIC_LINK_TO_OPTICAL,
    T0_NS,
    CameraSpec,
    rigid,
    storage_file,
    truncate,
    write_bag,
)
from rosbags.typesys import Stores

from fin3r_lib.data.bag import iter_bag_frames
from fin3r_lib.data.bag_open import list_topics
from fin3r_lib.data.bag_report import BagError, ReadReport
from fin3r_lib.data.bag_topics import camera_namespace

N = 10

CASES = [
    ("mcap", 9, Stores.ROS2_KILTED, "rgb8"),
    ("mcap", 8, Stores.ROS2_HUMBLE, "bgr8"),
    ("mcap", 9, Stores.ROS2_HUMBLE, "jpeg"),
    ("sqlite3", 9, Stores.ROS2_KILTED, "jpeg"),
    ("sqlite3", 8, Stores.ROS2_HUMBLE, "rgb8"),
    ("sqlite3", 9, Stores.ROS2_HUMBLE, "bgr8"),
    ("ros1", 0, Stores.ROS1_NOETIC, "rgb8"),
    ("ros1", 0, Stores.ROS1_NOETIC, "bgr8"),
    ("ros1", 0, Stores.ROS1_NOETIC, "jpeg"),
]


@pytest.fixture(scope="module")
def scene(seven_scenes):
    """The first N 7-Scenes frames, their rigid ground-truth poses and K."""
    return seven_scenes["rgb"][:N], rigid(seven_scenes["poses"][:N]), seven_scenes["K"]


def _bag(tmp_path, storage, version=9, store=Stores.ROS2_KILTED, cameras=()):
    path = tmp_path / ("log.bag" if storage == "ros1" else "log")
    return write_bag(path, cameras, storage=storage, version=version, store=store)


def assert_pixels(got: np.ndarray, want: np.ndarray, encoding: str) -> None:
    if encoding == "jpeg":  # what the JPEG in the bag decodes to, and close to the source (PSNR)
        _, buf = cv2.imencode(".jpg", cv2.cvtColor(want, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        np.testing.assert_array_equal(got, cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
        mse = np.mean((got.astype(np.float64) - want) ** 2)
        assert 10 * np.log10(255**2 / mse) > 30
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(("storage", "version", "store", "encoding"), CASES)
def test_frames_give_back_pixels_K_and_poses(tmp_path, scene, storage, version, store, encoding):
    rgb, poses, K = scene
    bag = _bag(tmp_path, storage, version, store, [CameraSpec(rgb, K, poses, encoding=encoding)])
    reports: list[ReadReport] = []
    frames = list(iter_bag_frames(bag, reports=reports, workers=2))
    assert len(frames) == N
    for i, frame in enumerate(frames):
        assert frame.index == i and frame.camera == "cam" and frame.frame_id == "cam_optical"
        assert frame.stamp == pytest.approx((T0_NS + i * PERIOD_NS) * 1e-9, abs=1e-6)
        assert frame.rgb.dtype == np.uint8 and frame.rgb.shape == rgb[i].shape
        assert_pixels(frame.rgb, rgb[i], encoding)
        np.testing.assert_array_equal(frame.intrinsics, K)
        np.testing.assert_array_equal(frame.distortion, [0.1, -0.05, 0.001, 0.002, 0.0])
        np.testing.assert_allclose(frame.cam_to_world, poses[i], atol=1e-6)
    (report,) = reports
    assert report.messages == report.readable == 3 * N + 1 and report.lost == 0 and not report.damaged
    assert report.frames == N and report.unposed == 0


def _interpolated_link(link0: np.ndarray, link1: np.ndarray, s: float) -> np.ndarray:
    """Geodesic rotation and linear translation between two poses (independent of the quaternion code)."""
    rvec, _ = cv2.Rodrigues(link0[:3, :3].T @ link1[:3, :3])
    step, _ = cv2.Rodrigues(rvec * s)
    out = np.eye(4)
    out[:3, :3] = link0[:3, :3] @ step
    out[:3, 3] = (1 - s) * link0[:3, 3] + s * link1[:3, 3]
    return out


def test_poses_interpolate_between_tf_samples(tmp_path, scene):
    rgb, poses, K = scene
    every = 3  # TF at images 0, 3, 6, 9: the others are interpolated
    bag = _bag(tmp_path, "mcap", cameras=[CameraSpec(rgb, K, poses, tf_every=every)])
    frames = list(iter_bag_frames(bag, fixed_frame="map"))
    links = poses @ np.linalg.inv(STATIC_LINK_TO_OPTICAL)
    for i, frame in enumerate(frames):
        a = i // every * every
        b = min(a + every, N - 1)
        s = 0.0 if a == b else (i - a) / (b - a)
        want = _interpolated_link(links[a], links[b], s) @ STATIC_LINK_TO_OPTICAL
        np.testing.assert_allclose(frame.cam_to_world, want, atol=1e-6)
    assert not np.allclose(frames[1].cam_to_world, poses[1], atol=1e-4)  # really interpolated, not the truth


def test_several_cameras_at_once(tmp_path, scene):
    rgb, poses, K = scene
    k_right = K.copy()
    k_right[0, 2] += 7.0
    shifted = poses.copy()
    shifted[:, :3, 3] += shifted[:, :3, 0] * 0.1  # a right camera 10 cm along the left camera's x axis
    right_stamps = [T0_NS + i * PERIOD_NS + PERIOD_NS // 2 for i in range(N)]
    cameras = [
        CameraSpec(rgb, K, poses, ns="/left", encoding="rgb8"),
        CameraSpec(rgb[:, :, ::-1].copy(), k_right, shifted, ns="/right", encoding="jpeg", stamps_ns=right_stamps),
    ]
    bag = _bag(tmp_path, "mcap", cameras=cameras)
    frames = list(iter_bag_frames(bag, ["/left/image_raw", "/right/image_raw/compressed"]))
    by_camera = {c: [f for f in frames if f.camera == c] for c in ("left", "right")}
    assert [len(v) for v in by_camera.values()] == [N, N]
    assert [f.stamp for f in frames] == sorted(f.stamp for f in frames)  # interleaved in bag order
    for i in range(N):
        left, right = by_camera["left"][i], by_camera["right"][i]
        assert_pixels(left.rgb, rgb[i], "rgb8")
        assert_pixels(right.rgb, rgb[i][:, ::-1], "jpeg")
        np.testing.assert_array_equal(left.intrinsics, K)
        np.testing.assert_array_equal(right.intrinsics, k_right)
        np.testing.assert_allclose(left.cam_to_world, poses[i], atol=1e-6)
        np.testing.assert_allclose(right.cam_to_world, shifted[i], atol=1e-6)
        assert right.frame_id == "right_optical"


def test_topics_are_listed_with_types_and_counts(tmp_path, scene):
    rgb, poses, K = scene
    bag = _bag(tmp_path, "sqlite3", cameras=[CameraSpec(rgb, K, poses, encoding="jpeg")])
    listed = {(t.topic, t.msgtype, t.count) for t in list_topics(bag)}
    assert listed == {
        ("/cam/image_raw/compressed", "sensor_msgs/msg/CompressedImage", N),
        ("/cam/camera_info", "sensor_msgs/msg/CameraInfo", N),
        ("/tf", "tf2_msgs/msg/TFMessage", N),
        ("/tf_static", "tf2_msgs/msg/TFMessage", 1),
    }


def test_missing_topic_lists_the_image_topics_present(tmp_path, scene):
    rgb, _, K = scene
    bag = _bag(tmp_path, "mcap", cameras=[CameraSpec(rgb[:2], K)])
    with pytest.raises(BagError, match=r"'/front/image_raw'.*image topics present: \['/cam/image_raw'\]"):
        list(iter_bag_frames(bag, ["/front/image_raw"]))
    with pytest.raises(BagError, match="bag not found"):
        list(iter_bag_frames(tmp_path / "absent.mcap"))


def test_unknown_fixed_frame_is_an_error(tmp_path, scene):
    rgb, poses, K = scene
    bag = _bag(tmp_path, "mcap", cameras=[CameraSpec(rgb[:3], K, poses[:3])])
    with pytest.raises(BagError, match=r"fixed frame 'odom' is not in the TF tree.*'map'"):
        list(iter_bag_frames(bag, fixed_frame="odom"))


def test_frames_without_tf_have_no_pose(tmp_path, scene):
    rgb, _, K = scene
    bag = _bag(tmp_path, "ros1", cameras=[CameraSpec(rgb[:3], K)])
    frames = list(iter_bag_frames(bag))
    assert len(frames) == 3 and all(f.cam_to_world is None for f in frames)
    np.testing.assert_array_equal(frames[2].intrinsics, K)


def test_images_alone_have_no_calibration_and_no_pose(tmp_path, scene):
    rgb, _, K = scene
    bag = _bag(tmp_path, "mcap", cameras=[CameraSpec(rgb[:3], K, camera_info=False)])
    frames = list(iter_bag_frames(bag))
    assert len(frames) == 3 and all(f.cam_to_world is None and f.intrinsics is None for f in frames)
    np.testing.assert_array_equal(frames[1].rgb, rgb[1])


@pytest.mark.parametrize(("storage", "where"), [("mcap", "byte offset"), ("sqlite3", "message id")])
def test_truncated_bag_yields_the_readable_prefix_and_the_loss(tmp_path, scene, storage, where):
    rgb, poses, K = scene
    bag = _bag(tmp_path, storage, cameras=[CameraSpec(rgb, K, poses)])
    truncate(storage_file(bag), 0.6)
    reports: list[ReadReport] = []
    frames = list(iter_bag_frames(bag, reports=reports))
    assert 1 <= len(frames) < N
    for i, frame in enumerate(frames):  # a prefix, each frame intact
        assert frame.index == i
        np.testing.assert_array_equal(frame.rgb, rgb[i])
    (report,) = reports
    assert report.messages == 3 * N + 1
    assert 0 < report.readable < report.messages and report.lost == report.messages - report.readable
    assert report.damaged and where in report.stopped_at[0]
    assert f"{report.lost} lost" in str(report)


def test_camera_namespace():
    assert camera_namespace("/cam/image_raw", "sensor_msgs/msg/Image") == "/cam"
    assert camera_namespace("/cam/image_raw/compressed", "sensor_msgs/msg/CompressedImage") == "/cam"
    assert camera_namespace("/image_raw", "sensor_msgs/msg/Image") == ""


def test_ros1_bag_cut_inside_its_only_chunk_is_a_clear_error(tmp_path, scene):
    rgb, _, K = scene
    bag = _bag(tmp_path, "ros1", cameras=[CameraSpec(rgb[:4], K)])
    truncate(bag, 0.5)
    with pytest.raises(BagError, match=r"cannot read ROS 1 bag .*log\.bag: no complete chunk \(the file is cut at"):
        list(iter_bag_frames(bag))


def test_undecodable_images_are_counted_as_lost(tmp_path, scene):
    rgb, _, K = scene
    bag = _bag(tmp_path, "sqlite3", cameras=[CameraSpec(rgb[:5], K, encoding="jpeg", broken_jpeg=(1, 3))])
    reports: list[ReadReport] = []
    frames = list(iter_bag_frames(bag, reports=reports))
    assert [f.index for f in frames] == [0, 2, 4]
    (report,) = reports
    assert report.lost == 2 and report.damaged and "undecodable image" in report.errors[0]
