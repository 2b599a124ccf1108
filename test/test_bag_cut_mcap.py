"""A cut MCAP file (a recorder killed mid-write) is read in place: the uncut file's first frames, no copy."""

from __future__ import annotations

import hashlib
import io
import tempfile

import numpy as np
import pytest
from bag_fixtures import CameraSpec, rechunk_mcap, rigid, storage_file, write_bag
from mcap.exceptions import EndOfFile
from mcap.records import Message
from mcap.stream_reader import StreamReader

from fin3r_lib.cli.main import main
from fin3r_lib.data.bag import iter_bag_frames
from fin3r_lib.data.bag_open import list_topics
from fin3r_lib.data.bag_report import ReadReport

N = 12
IMAGE = "/cam/image_raw"


@pytest.fixture(scope="module")
def spec(seven_scenes):
    """12 real 7-Scenes frames (640x480 rgb8), with CameraInfo and TF poses."""
    return CameraSpec(seven_scenes["rgb"][:N], seven_scenes["K"], rigid(seven_scenes["poses"][:N]))


def _bag(tmp_path, spec: CameraSpec, layout: str):
    bag = write_bag(tmp_path / "log", [spec], storage="mcap", zstd_chunks=layout == "zstd by rosbags")
    if layout == "zstd 768 KiB":
        rechunk_mcap(storage_file(bag), "zstd", 768 * 1024)
    return bag


def _complete_messages(data: bytes) -> list[Message]:
    """The messages of the complete records of cut MCAP bytes, read by the `mcap` library's stream reader."""
    out = []
    try:
        for record in StreamReader(io.BytesIO(data), skip_magic=False).records:
            if isinstance(record, Message):
                out.append(record)
    except EndOfFile:
        pass
    return out


def _snapshot(folder) -> dict[str, tuple[int, str]]:
    """Every file under `folder`: size and content hash."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("layout", ["uncompressed by rosbags", "zstd by rosbags", "zstd 768 KiB"])
def test_a_cut_mcap_gives_the_uncut_first_frames_read_in_place(tmp_path, spec, layout, monkeypatch):
    bag = _bag(tmp_path, spec, layout)
    full = list(iter_bag_frames(bag, workers=0))
    mcap = storage_file(bag)
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) * 2 // 3])
    complete = _complete_messages(mcap.read_bytes())
    images = sum(1 for m in complete if m.channel_id == _channel_id(data, IMAGE))
    tf_times = {m.log_time for m in complete if m.channel_id == _channel_id(data, "/tf")}
    assert 0 < images < N

    # no temporary space: a folder that does not exist, so that writing any temporary file fails
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no temporary space"))
    before = _snapshot(bag)
    reports: list[ReadReport] = []
    frames = list(iter_bag_frames(bag, workers=0, reports=reports))
    topics = {t.topic: t.count for t in list_topics(bag)}
    assert _snapshot(bag) == before and not (tmp_path / "no temporary space").exists()

    assert len(frames) == images
    for got, want in zip(frames, full, strict=False):
        np.testing.assert_array_equal(got.rgb, want.rgb)
        np.testing.assert_array_equal(got.intrinsics, want.intrinsics)
        np.testing.assert_array_equal(got.distortion, want.distortion)
        if got.stamp_ns in tf_times:  # the TF sample of an image follows it: the last image may have lost it
            np.testing.assert_array_equal(got.cam_to_world, want.cam_to_world)
        else:
            assert got.cam_to_world is None
        assert (got.stamp_ns, got.index, got.frame_id) == (want.stamp_ns, want.index, want.frame_id)
    (report,) = reports
    assert report.unposed == sum(f.stamp_ns not in tf_times for f in frames) <= 1
    assert report.readable == len(complete) == sum(topics.values()) and topics[IMAGE] == images
    assert report.messages == 3 * N + 1 and report.lost == report.messages - len(complete)
    (stopped,) = report.stopped_at
    assert stopped.startswith(f"{mcap.name}: byte offset ") and stopped.endswith(f" of {len(data) * 2 // 3}")


def _channel_id(data: bytes, topic: str) -> int:
    """The id of `topic`'s channel in MCAP bytes (from the `mcap` library's stream reader)."""
    from mcap.records import Channel

    for record in StreamReader(io.BytesIO(data), skip_magic=False).records:
        if isinstance(record, Channel) and record.topic == topic:
            return record.id
    raise AssertionError(f"no channel {topic}")


def test_a_cut_mcap_is_reported_damaged_once(tmp_path, spec, capsys):
    bag = _bag(tmp_path, spec, "zstd by rosbags")
    mcap = storage_file(bag)
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size * 2 // 3])
    assert main(["extract", str(bag), "--out", str(tmp_path / "ds"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("damaged bag") == 1, err
