"""Reading CameraInfo and TF without the images: the MCAP index reader, the CDR readers, the TF buffer's fast path."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import transforms3d
from bag_fixtures import CameraSpec, bag_messages, rechunk_mcap, rigid, storage_file, truncate, write_bag
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin
from rosbags.rosbag2 import Writer as Writer2
from rosbags.typesys import Stores, get_typestore

from fin3r_lib.data.bag import iter_bag_frames
from fin3r_lib.data.cdr import CdrError, cdr_camera_info, cdr_transforms
from fin3r_lib.data.mcap_index import McapIndexError, indexed_messages
from fin3r_lib.data.tf_buffer import TfBuffer, TfError, matrix_from

SMALL_TOPICS = ("/cam/camera_info", "/tf", "/tf_static")


def _camera(n: int = 6) -> CameraSpec:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (n, 24, 32, 3), dtype=np.uint8)
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, 0, 3] = np.linspace(0.0, 1.0, n)
    angles = np.linspace(0.0, 0.5, n)
    poses[:, 0, 0], poses[:, 0, 1], poses[:, 1, 0], poses[:, 1, 1] = (
        np.cos(angles),
        -np.sin(angles),
        np.sin(angles),
        np.cos(angles),
    )
    return CameraSpec(rgb, np.array([[30.0, 0, 16], [0, 30.0, 12], [0, 0, 1]]), rigid(poses))


def test_indexed_messages_are_what_rosbags_reads(tmp_path):
    bag = write_bag(tmp_path / "bag", [_camera()], storage="mcap")
    with AnyReader([bag]) as reader:
        wanted = [c for c in reader.connections if c.topic in SMALL_TOPICS]
        expected = [(t, c.topic, bytes(raw)) for c, t, raw in reader.messages(connections=wanted)]
    got = indexed_messages(storage_file(bag), SMALL_TOPICS)
    assert len(expected) == 6 + 6 + 1  # CameraInfo and TF per image, one static TF
    assert got == expected
    assert indexed_messages(storage_file(bag), ("/absent",)) == []


def test_indexed_messages_refuse_a_file_without_summary(tmp_path):
    bag = write_bag(tmp_path / "bag", [_camera()], storage="mcap")
    truncate(storage_file(bag), 0.6)
    with pytest.raises(McapIndexError, match="magic"):
        indexed_messages(storage_file(bag), SMALL_TOPICS)


def _zstd_bag_by_rosbags(path, cam: CameraSpec):
    """A bag whose MCAP chunks rosbags' writer compresses with zstd (its own chunk layout: 1 MiB)."""
    ts = get_typestore(Stores.ROS2_KILTED)
    writer = Writer2(path, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    with writer:
        connections = {}
        for topic, msgtype, ns, msg in bag_messages(ts, [cam], ros1=False):
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=ts)
            writer.write(connections[topic], ns, ts.serialize_cdr(msg, msgtype))
    return path


@pytest.mark.parametrize("layout", ["zstd by rosbags", "zstd 768 KiB", "lz4 768 KiB", "zstd 2 KiB", "none 2 KiB"])
def test_compressed_chunks_are_read_through_the_index(tmp_path, layout, caplog):
    cam = _camera(12)
    if layout == "zstd by rosbags":
        bag = _zstd_bag_by_rosbags(tmp_path / "bag", cam)
    else:
        bag = write_bag(tmp_path / "bag", [cam], storage="mcap")
        compression, size = layout.split()[0].replace("none", ""), int(layout.split()[1]) * 1024
        rechunk_mcap(storage_file(bag), compression, size)
    with AnyReader([bag]) as reader:  # rosbags, which decompresses whole chunks, gives the expectation
        wanted = [c for c in reader.connections if c.topic in SMALL_TOPICS]
        expected = [(t, c.topic, bytes(raw)) for c, t, raw in reader.messages(connections=wanted)]
        assert {c.topic for c in wanted} == set(SMALL_TOPICS)
    assert indexed_messages(storage_file(bag), SMALL_TOPICS) == expected
    with caplog.at_level(logging.DEBUG, logger="fin3r_lib.data.bag_context"):
        frames = list(iter_bag_frames(bag, workers=0))
    assert not [r for r in caplog.records if "through rosbags" in r.getMessage()]  # the index read served
    assert len(frames) == len(cam.rgb)
    for frame, rgb, pose in zip(frames, cam.rgb, cam.poses, strict=True):
        np.testing.assert_array_equal(frame.rgb, rgb)
        np.testing.assert_allclose(frame.cam_to_world, pose, atol=1e-6)
        np.testing.assert_array_equal(frame.intrinsics, cam.K)


def test_an_unknown_chunk_compression_is_refused(tmp_path):
    bag = write_bag(tmp_path / "bag", [_camera()], storage="mcap")
    path = rechunk_mcap(storage_file(bag), "zstd", 2048)
    data = path.read_bytes()
    assert data.count(b"zstd") > 2
    path.write_bytes(data.replace(b"\x04\x00\x00\x00zstd", b"\x04\x00\x00\x00brot"))  # chunks and their index
    with pytest.raises(McapIndexError, match="'brot'-compressed chunk: expected zstd, lz4 or none"):
        indexed_messages(path, SMALL_TOPICS)


def test_cdr_transforms_match_rosbags():
    ts = get_typestore(Stores.ROS2_KILTED)
    types = ts.types

    def stamped(parent: str, child: str, sec: int, nanosec: int, t, q):
        return types["geometry_msgs/msg/TransformStamped"](
            header=types["std_msgs/msg/Header"](
                stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=parent
            ),
            child_frame_id=child,
            transform=types["geometry_msgs/msg/Transform"](
                translation=types["geometry_msgs/msg/Vector3"](x=t[0], y=t[1], z=t[2]),
                rotation=types["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3]),
            ),
        )

    msg = types["tf2_msgs/msg/TFMessage"](
        transforms=[  # frame names of several lengths, so that each alignment case occurs
            stamped("map", "odom_x", 12, 500_000_000, (1.5, -2.0, 0.25), (0.0, 0.0, 0.6, 0.8)),
            stamped("odom_x", "base_link1", 13, 7, (0.0, 1e-3, -4.0), (0.5, 0.5, 0.5, 0.5)),
            stamped("b", "cam", 0, 1, (3.0, 2.0, 1.0), (1.0, 0.0, 0.0, 0.0)),
            stamped("map", "c", 1491682360, 314066469, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0)),
        ]
    )
    raw = ts.serialize_cdr(msg, "tf2_msgs/msg/TFMessage")
    assert cdr_transforms(raw) == [
        (
            tr.header.frame_id,
            tr.child_frame_id,
            int(f"{tr.header.stamp.sec}{tr.header.stamp.nanosec:09d}"),  # exact integer nanoseconds
            (tr.transform.translation.x, tr.transform.translation.y, tr.transform.translation.z),
            (tr.transform.rotation.x, tr.transform.rotation.y, tr.transform.rotation.z, tr.transform.rotation.w),
        )
        for tr in msg.transforms
    ]
    with pytest.raises(CdrError, match="little-endian"):
        cdr_transforms(b"\x00\x00" + bytes(raw[2:]))
    with pytest.raises(CdrError, match="malformed"):
        cdr_transforms(bytes(raw[:40]))


@pytest.mark.parametrize("distortion", [(0.1, -0.05, 0.001, 0.002, 0.0), (), (0.3,) * 8])
def test_cdr_camera_info_matches_rosbags(distortion):
    ts = get_typestore(Stores.ROS2_HUMBLE)
    cam = _camera(1)
    cam.distortion = distortion
    (info,) = [m for topic, _, _, m in bag_messages(ts, [cam], ros1=False) if topic == "/cam/camera_info"]
    raw = ts.serialize_cdr(info, "sensor_msgs/msg/CameraInfo")
    k, d = cdr_camera_info(raw)
    np.testing.assert_array_equal(k, cam.K)
    np.testing.assert_array_equal(d, np.asarray(distortion, dtype=np.float64))
    assert k.dtype == d.dtype == np.float64 and d.shape == (len(distortion),)
    with pytest.raises(CdrError, match="malformed CDR CameraInfo"):
        cdr_camera_info(bytes(raw[:60]))


def test_a_stray_mcap_file_beside_the_bag_is_not_read(tmp_path):
    """A rosbag2 directory's files are listed for the index read; one not in metadata.yaml must not count."""
    cam = _camera()
    bag = write_bag(tmp_path / "bag", [cam], storage="mcap")
    poses = cam.poses[:2].copy()
    poses[:, 2, 3] += 5.0  # a different trajectory at the same stamps, that must not leak into this bag's poses
    other = CameraSpec(cam.rgb[:2], cam.K, poses)
    storage_file(write_bag(tmp_path / "other", [other], storage="mcap")).rename(bag / "stray.mcap")
    frames = list(iter_bag_frames(bag, workers=0))
    assert len(frames) == len(cam.rgb)
    for frame, pose in zip(frames, cam.poses, strict=True):
        np.testing.assert_allclose(frame.cam_to_world, pose, atol=1e-6)


def test_matrix_from_is_transforms3d_quat2mat():
    rng = np.random.default_rng(0)
    for q in rng.normal(size=(20, 4)):
        q /= np.linalg.norm(q)
        m = matrix_from((1.0, -2.0, 0.5), q)
        np.testing.assert_allclose(m[:3, :3], transforms3d.quaternions.quat2mat(q), atol=1e-15)
        np.testing.assert_array_equal(m[:3, 3], [1.0, -2.0, 0.5])
        np.testing.assert_array_equal(m[3], [0.0, 0.0, 0.0, 1.0])


def test_a_zero_quaternion_is_refused():
    with pytest.raises(TfError, match="expected a rotation quaternion"):
        TfBuffer().add("map", "cam", 1.0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0))
