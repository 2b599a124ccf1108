"""The image pass over MCAP files through their index (`mcap_stream`): rosbags' messages, in rosbags' order."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from bag_fixtures import CameraSpec, bag_messages, rechunk_mcap, storage_file, write_bag
from mcap.reader import make_reader
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin
from rosbags.rosbag2 import Writer as Writer2
from rosbags.typesys import Stores, get_typestore

from fin3r_lib.data.bag import iter_bag_frames
from fin3r_lib.data.bag_messages import READ_ERRORS, read_messages
from fin3r_lib.data.bag_report import ReadReport
from fin3r_lib.data.mcap_index import McapIndexError
from fin3r_lib.data.mcap_stream import IndexedStream

IMAGES = ("/cam/image_raw", "/cam2/image_raw")
WITH_SMALL = (*IMAGES, "/cam/camera_info", "/tf")


def _cameras(n: int = 10, offset_ns: int = 0) -> list[CameraSpec]:
    """Two cameras, the first with poses; the second's stamps `offset_ns` after the first's."""
    rng = np.random.default_rng(5)
    K = np.array([[30.0, 0, 16], [0, 30.0, 12], [0, 0, 1]])
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, 0, 3] = np.linspace(0.0, 1.0, n)
    cameras = [
        CameraSpec(rng.integers(0, 256, (n, 24, 32, 3), dtype=np.uint8), K, poses),
        CameraSpec(rng.integers(0, 256, (n, 24, 32, 3), dtype=np.uint8), K, ns="/cam2"),
    ]
    cameras[1].stamps_ns = [t + offset_ns for t in cameras[0].stamps()]
    return cameras


def _bag(tmp_path, layout: str):
    cameras = _cameras()
    bag = write_bag(tmp_path / "bag", cameras, storage="mcap", zstd_chunks=layout == "zstd by rosbags")
    if "by rosbags" not in layout:
        compression, size, *order = layout.split()
        rechunk_mcap(storage_file(bag), compression.replace("none", ""), int(size), by_topic=order == ["by-topic"])
    return bag


def _both(paths, topics) -> tuple[list, list]:
    """(topic, log time, data) of `topics` as rosbags reads them (the expectation, data as bytes), and as
    `read_messages` does (data as it comes), from one open reader: rosbags orders messages of equal log time
    in several files by the id of objects of that reader."""
    with AnyReader(paths) as reader:
        wanted = [c for c in reader.connections if c.topic in topics]
        expected = [(c.topic, t, bytes(raw)) for c, t, raw in reader.messages(connections=wanted)]
        got = [(c.topic, t, raw) for c, t, raw in read_messages(reader, wanted, ReadReport("bag"))]
    return expected, got


def _chunks(path) -> list:
    """The chunk index of an MCAP file, read by the `mcap` library."""
    with open(path, "rb") as f:
        return make_reader(f).get_summary().chunk_indexes


LAYOUTS = [
    "zstd by rosbags",
    "uncompressed by rosbags",
    "zstd 4096",
    "lz4 4096",
    "none 4096",
    "zstd 4096 by-topic",
    "zstd 3000 by-topic",
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("topics", [IMAGES, WITH_SMALL])
def test_the_index_pass_gives_rosbags_messages_in_rosbags_order(tmp_path, layout, topics):
    bag = _bag(tmp_path, layout)
    expected, got = _both([bag], topics)
    assert len(expected) == 20 + (20 if topics == WITH_SMALL else 0)
    assert all(isinstance(raw, memoryview) for _, _, raw in got)  # the index path served, not rosbags
    assert [(topic, t, bytes(raw)) for topic, t, raw in got] == expected


def test_chunks_overlapping_in_time_read_right_with_any_cache_size(tmp_path):
    bag = _bag(tmp_path, "zstd 3000 by-topic")
    path = storage_file(bag)
    expected = [(t, topic, raw) for topic, t, raw in _both([bag], WITH_SMALL)[0]]
    chunks = _chunks(path)
    assert any(a.message_end_time > b.message_start_time for a, b in itertools.pairwise(chunks))
    for max_chunks in (1, 2, 3, 64):
        assert [(t, topic, bytes(d)) for t, topic, d in IndexedStream(path, WITH_SMALL, max_chunks)] == expected


def test_several_files_merge_by_log_time_as_rosbags_does(tmp_path):
    first, second = _cameras()
    a = storage_file(write_bag(tmp_path / "a", [first], storage="mcap"))
    b = storage_file(write_bag(tmp_path / "b", [CameraSpec(second.rgb, second.K, ns="/cam2")], storage="mcap"))
    expected, got = _both([a, b], WITH_SMALL)
    assert {topic for topic, _, _ in expected} == set(WITH_SMALL)
    assert all(isinstance(raw, memoryview) for _, _, raw in got)
    assert [(topic, t, bytes(raw)) for topic, t, raw in got] == expected


def test_per_message_compression_is_read_through_rosbags(tmp_path):
    ts = get_typestore(Stores.ROS2_KILTED)
    writer = Writer2(tmp_path / "bag", version=9, storage_plugin=StoragePlugin.MCAP)
    writer.set_compression(CompressionMode.MESSAGE, CompressionFormat.ZSTD)
    with writer:
        connections = {}
        for topic, msgtype, ns, msg in bag_messages(ts, _cameras(), ros1=False):
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=ts)
            writer.write(connections[topic], ns, ts.serialize_cdr(msg, msgtype))
    bag = tmp_path / "bag"
    expected, got = _both([bag], IMAGES)
    assert all(isinstance(raw, bytes) for _, _, raw in got)  # records hold compressed messages: rosbags decodes
    assert got == expected


def test_a_damaged_chunk_stops_the_pass_with_the_loss_reported(tmp_path):
    cameras = _cameras(offset_ns=50_000_000)
    for cam in cameras:  # images alone, at distinct stamps: every chunk starts after the previous one ends
        cam.camera_info, cam.poses = False, None
    bag = write_bag(tmp_path / "bag", cameras, storage="mcap")
    path = rechunk_mcap(storage_file(bag), "zstd", 4096)
    undamaged, _ = _both([bag], IMAGES)
    chunks = _chunks(path)
    middle = chunks[len(chunks) // 2]
    assert all(p.message_end_time < c.message_start_time for p, c in itertools.pairwise(chunks))
    data = bytearray(path.read_bytes())
    at = middle.chunk_start_offset + middle.chunk_length - 100  # inside the compressed records
    data[at : at + 8] = bytes(255 - x for x in data[at : at + 8])
    path.write_bytes(bytes(data))
    expected = [m for m in undamaged if m[1] < middle.message_start_time]
    report = ReadReport("bag")
    with AnyReader([bag]) as reader:
        wanted = [c for c in reader.connections if c.topic in IMAGES]
        got = [(c.topic, t, raw) for c, t, raw in read_messages(reader, wanted, report)]
    assert 0 < len(expected) < 20
    assert [(topic, t, bytes(raw)) for topic, t, raw in got] == expected == _rosbags_until_error([bag], IMAGES)
    assert report.lost == 20 - len(got)
    assert len(report.stopped_at) == 1 and f"message {len(got)} of 20" in report.stopped_at[0]
    with pytest.raises(McapIndexError, match=f"chunk at byte {middle.chunk_start_offset}"):
        list(IndexedStream(path, IMAGES))


def _rosbags_until_error(paths, topics) -> list[tuple[str, int, bytes]]:
    """rosbags' messages up to the error that a damaged chunk raises (rosbags checks each chunk's CRC too)."""
    out = []
    with AnyReader(paths) as reader:
        wanted = [c for c in reader.connections if c.topic in topics]
        try:
            for c, t, raw in reader.messages(connections=wanted):
                out.append((c.topic, t, bytes(raw)))
        except READ_ERRORS:
            return out
    raise AssertionError("rosbags read the damaged chunk without an error")


def test_frames_from_the_index_pass_are_the_written_images(tmp_path):
    cameras = _cameras()
    bag = _bag(tmp_path, "zstd 4096 by-topic")
    frames = list(iter_bag_frames(bag, workers=0))
    by_camera = {"cam": [], "cam2": []}
    for frame in frames:
        by_camera[frame.camera].append(frame)
    for cam in cameras:
        got = by_camera[cam.ns.strip("/")]
        assert [f.stamp_ns for f in got] == cam.stamps()
        for frame, rgb in zip(got, cam.rgb, strict=True):
            np.testing.assert_array_equal(frame.rgb, rgb)
            np.testing.assert_array_equal(frame.intrinsics, cam.K)
