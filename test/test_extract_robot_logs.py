"""`fin3r extract` on what real robot logs bring: several bags, wrong options, damaged and non-bag inputs,
exact nanosecond stamps, Ctrl-C, and aligned depth. Bags are written from the 7-Scenes frames (real writers)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from bag_fixtures import PERIOD_NS, CameraSpec, rigid, write_bag

from fin3r_lib.cli.main import main
from fin3r_lib.data.bag import iter_bag_frames
from fin3r_lib.data.dataset import MANIFEST, SETTINGS, DatasetError, FrameDataset
from fin3r_lib.data.extract import ExtractOptions, extract_frames
from fin3r_lib.data.selection import SelectionConfig
from fin3r_lib.datasets import open_sequence
from fin3r_lib.training.label_cache import LabelCache, label_frames
from fin3r_lib.training.teachers.sensor import SensorTeacher

N = 6
KEEP_ALL = SelectionConfig(blur_ratio=None, duplicate_level=None)
STAMP0 = 1491682360314066469  # float64 seconds would turn it into ...314066410


@pytest.fixture(scope="module")
def scene(small_scenes):
    return small_scenes["rgb"][:N], rigid(small_scenes["poses"][:N]), small_scenes["K"], small_scenes["depth_mm"][:N]


def _spec(scene, first_ns: int = STAMP0, **kwargs) -> CameraSpec:
    rgb, poses, K, _ = scene
    return CameraSpec(rgb, K, poses, stamps_ns=[first_ns + i * PERIOD_NS for i in range(N)], **kwargs)


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / MANIFEST).read_text().splitlines()]


def test_two_bags_give_every_frame_of_both(tmp_path, scene):
    """README's example passes two bags (an .mcap and a sqlite3 folder): none of the second's frames may be lost."""
    first = write_bag(tmp_path / "run1", [_spec(scene)], storage="mcap")
    second = write_bag(tmp_path / "run2", [_spec(scene, STAMP0 + 60 * PERIOD_NS)], storage="sqlite3")
    result = extract_frames([first, second], tmp_path / "ds", ExtractOptions(selection=KEEP_ALL), progress=False)
    assert result.kept == result.written == 2 * N and result.skipped == 0
    records = _records(tmp_path / "ds")
    want = [STAMP0 + i * PERIOD_NS for i in range(N)] + [STAMP0 + (60 + i) * PERIOD_NS for i in range(N)]
    assert [r["stamp_ns"] for r in records] == want
    assert [r["source"] for r in records] == [f"{first}#/cam/image_raw@{i}" for i in range(N)] + [
        f"{second}#/cam/image_raw@{i}" for i in range(N)
    ]
    frames = list(FrameDataset(tmp_path / "ds"))
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(frame.rgb, scene[0][i % N])
    # identities downstream: each bag's message indexes start at 0, the dataset's frame indexes do not repeat
    assert [r["index"] for r in records] == [*range(N), *range(N)]
    assert [f.index for f in frames] == list(range(2 * N)) and FrameDataset(tmp_path / "ds")[-1].index == 2 * N - 1
    teacher = SensorTeacher()
    cache = LabelCache(tmp_path / "labels", teacher.identity())
    rgbd = [replace(f, depth=np.full(f.size, 1.5, np.float32)) for f in frames]
    assert label_frames(rgbd, teacher, cache, progress=False).labelled == 2 * N
    assert len(list((tmp_path / "labels").glob("*.safetensors"))) == 2 * N and all(cache.has(f) for f in rgbd)


def test_the_same_stamps_from_two_bags_are_an_error(tmp_path, scene):
    bag = write_bag(tmp_path / "run", [_spec(scene)], storage="mcap")
    copy = write_bag(tmp_path / "copy", [_spec(scene)], storage="mcap")
    with pytest.raises(DatasetError, match=rf"two frames of camera 'cam' have stamp {STAMP0} ns: .*run#.*copy#"):
        extract_frames([bag, copy], tmp_path / "ds", ExtractOptions(selection=KEEP_ALL), progress=False)


def test_stamps_are_kept_in_integer_nanoseconds(tmp_path, scene):
    bag = write_bag(tmp_path / "log", [_spec(scene)], storage="mcap")
    assert main(["extract", str(bag), "--out", str(tmp_path / "ds"), "--quiet"]) == 0
    record = _records(tmp_path / "ds")[0]
    assert record["stamp_ns"] == 1491682360314066469 and record["file"] == "images/cam/1491682360314066469.png"
    assert "stamp" not in record
    frame = FrameDataset(tmp_path / "ds")[0]
    assert frame.stamp_ns == 1491682360314066469 and frame.stamp == 1491682360314066469 / 1e9
    selection = json.loads((tmp_path / "ds" / "selection.jsonl").read_text().splitlines()[0])
    assert selection["stamp_ns"] == 1491682360314066469


def test_a_wrong_topic_writes_nothing_and_the_corrected_run_works(tmp_path, scene, capsys):
    first = write_bag(tmp_path / "a", [_spec(scene)], storage="mcap")
    other = write_bag(tmp_path / "b", [_spec(scene, STAMP0 + 60 * PERIOD_NS, ns="/front")], storage="mcap")
    out = tmp_path / "ds"
    # the topic exists in the first bag only: the second bag's check must come before anything is written
    assert main(["extract", str(first), str(other), "--out", str(out), "--topic", "/cam/image_raw", "--quiet"]) == 1
    assert "image topic(s) ['/cam/image_raw'] not in" in capsys.readouterr().err
    assert not out.exists() or not (out / SETTINGS).exists()
    assert main(["extract", str(first), "--out", str(out), "--topic", "/cam/image_raw", "--quiet"]) == 0
    assert f"kept {N} of {N}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("window", "shown"), [(["--start", "100"], "--start 100.0 --end None"), (["--end", "-1"], "--end -1.0")]
)
def test_an_empty_time_window_is_an_error_naming_the_bag_time_range(tmp_path, scene, capsys, window, shown):
    bag = write_bag(tmp_path / "log", [_spec(scene)], storage="mcap")
    assert main(["extract", str(bag), "--out", str(tmp_path / "ds"), "--quiet", *window]) == 1
    err = capsys.readouterr().err
    last = STAMP0 + (N - 1) * PERIOD_NS  # the images' log times; the /tf_static sample sits 1 ns before the first
    stamps = f"1491682360.314066469 .. {last // 10**9}.{last % 10**9:09d}"
    span = f"they span 0.000 .. {(last - STAMP0 + 1) / 1e9:.3f} s ({stamps})"
    assert shown in err and f"holds no image of ['/cam/image_raw'] in {bag}: {span}" in err
    assert "(seconds from the bag's start, 1491682360.314066468)" in err
    assert main(["extract", str(bag), "--out", str(tmp_path / "ds"), "--start", "0.4", "--end", "0.2"]) == 1
    assert "empty time window: --start 0.4 s is after --end 0.2 s" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("storage", ["mcap", "sqlite3", "ros1"])
def test_the_window_is_checked_against_the_image_topic_not_the_whole_bag(tmp_path, scene, capsys, storage):
    """/cam images in the first 0.5 s, /front's from 6 s: a window from 3 s holds messages, but no /cam image."""
    front = _spec(scene, STAMP0 + 60 * PERIOD_NS, ns="/front")
    bag = write_bag(tmp_path / ("log.bag" if storage == "ros1" else "log"), [_spec(scene), front], storage=storage)
    out = tmp_path / "ds"
    args = ["extract", str(bag), "--out", str(out), "--quiet", "--start", "3"]
    assert main([*args, "--topic", "/cam/image_raw"]) == 1
    err = capsys.readouterr().err
    assert f"holds no image of ['/cam/image_raw'] in {bag}: they span 0.000 .. 0.500 s" in err, err
    assert not out.exists()
    assert main([*args, "--topic", "/front/image_raw", "--duplicate-level", "0", "--blur-ratio", "0"]) == 0
    assert f"kept {N} of {N}" in capsys.readouterr().out


def test_an_mcap_cut_inside_its_only_chunk_says_nothing_is_readable(tmp_path, scene, capsys):
    """Before: `--list` printed no topic and exit 0, `extract` said "no camera image topic ... none"."""
    bag = write_bag(tmp_path / "log", [_spec(scene)], storage="mcap")  # small images: one chunk
    mcap = next(bag.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    for args in (["--list"], ["--out", str(tmp_path / "ds")]):
        assert main(["extract", str(bag), *args]) == 1
        err = capsys.readouterr().err
        assert f"cannot read bag {bag}: it is cut before its first complete record of messages" in err, err
        assert "(stopped at log.mcap: byte offset " in err and "nothing is readable" in err
    assert not (tmp_path / "ds").exists()


def _not_bags(tmp_path: Path, scene) -> dict[str, tuple[Path, str]]:
    """Inputs that are not (readable) bags, each with the error it must give."""
    (tmp_path / "empty.mcap").write_bytes(b"")
    (tmp_path / "garbage.mcap").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "empty.db3").write_bytes(b"")
    (tmp_path / "garbage.db3").write_bytes(b"not a database" * 100)
    (tmp_path / "empty.bag").write_bytes(b"")
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        cv2.imwrite(str(images / f"{i}.png"), scene[0][i])
    (tmp_path / "walk.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    return {
        "empty.mcap": (tmp_path / "empty.mcap", "empty file (0 bytes); expected a MCAP bag"),
        "garbage.mcap": (tmp_path / "garbage.mcap", "not a valid MCAP bag: {path}: expected b'\\x89MCAP0\\r\\n'"),
        "empty.db3": (tmp_path / "empty.db3", "empty file (0 bytes); expected a sqlite3 bag"),
        "garbage.db3": (tmp_path / "garbage.db3", "not a valid sqlite3 bag: {path}: expected b'SQLite format 3"),
        "empty.bag": (tmp_path / "empty.bag", "empty file (0 bytes); expected a ROS 1 bag"),
        "images": (
            images,
            "expected a rosbag2 directory (metadata.yaml with .mcap / .db3 files), a .mcap / .db3 "
            "file or a ROS 1 .bag file, found a folder of 3 files (.png)",
        ),
        "walk.mp4": (tmp_path / "walk.mp4", "found a .mp4 file"),
    }


def test_inputs_that_are_not_bags_say_what_was_expected_and_found(tmp_path, scene, capsys):
    for path, message in _not_bags(tmp_path, scene).values():
        for args in (["--list"], ["--out", str(tmp_path / "ds")]):
            assert main(["extract", str(path), *args]) == 1, path
            err = capsys.readouterr().err
            assert message.format(path=path) in err and str(path) in err, err
            assert "/tmp/fin3r-bag-" not in err and "Must call with" not in err
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("compression", [None, "bz2", "lz4"])
def test_a_cut_ros1_bag_gives_the_frames_of_its_complete_chunks(tmp_path, scene, capsys, compression):
    """A recorder killed mid-write: the chunks before the cut are read (as `rosbag reindex` would recover them),
    frames identical to the uncut bag's first ones; the report says where it stopped and that the loss is unknown."""
    spec = _spec(scene)
    full = write_bag(tmp_path / "full.bag", [spec], storage="ros1", ros1_chunk_bytes=1, ros1_compression=compression)
    expected = list(iter_bag_frames(full, workers=0))
    cut = tmp_path / "cut.bag"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size * 2 // 3])
    reports = []
    frames = list(iter_bag_frames(cut, workers=0, reports=reports))
    assert 1 <= len(frames) < len(expected) == N
    for got, want in zip(frames, expected, strict=False):
        assert got.stamp_ns == want.stamp_ns
        np.testing.assert_array_equal(got.rgb, want.rgb)
        np.testing.assert_array_equal(got.intrinsics, want.intrinsics)
        np.testing.assert_array_equal(got.cam_to_world, want.cam_to_world)
    (report,) = reports
    assert report.lost is None and report.messages is None and report.damaged
    assert report.stopped_at[0].startswith("cut.bag: byte offset ") and "complete chunks kept" in report.stopped_at[0]
    assert main(["extract", str(cut), "--list"]) == 0
    assert "/cam/image_raw" in capsys.readouterr().out


def test_a_ros1_bag_cut_inside_its_first_chunk_says_so(tmp_path, scene, capsys):
    bag = write_bag(tmp_path / "log.bag", [_spec(scene)], storage="ros1")  # one chunk of 1 MiB
    with bag.open("r+b") as f:
        f.truncate(bag.stat().st_size // 2)
    assert main(["extract", str(bag), "--list"]) == 1
    err = capsys.readouterr().err
    assert f"cannot read ROS 1 bag {bag}: no complete chunk (the file is cut at byte" in err, err


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_stops_with_one_line_and_the_rerun_resumes(tmp_path, seven_scenes, signum, code):
    """SIGINT / SIGTERM to a real `fin3r extract` process: one line saying where it stopped, no traceback, exit
    128 + signal; what was written is kept (the manifest lists exactly the image files there); resume completes."""
    count = 300  # long enough (PNG encoding at 640x480) to interrupt in the middle; 100 finished first once
    rgb = np.concatenate([seven_scenes["rgb"]] * 6)[:count]
    bag = write_bag(tmp_path / "log", [CameraSpec(rgb, seven_scenes["K"])], storage="mcap")
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "fin3r_lib.cli.main", "extract", str(bag), "--out", str(out), "--quiet"]
    cmd += ["--duplicate-level", "0", "--blur-ratio", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / MANIFEST).is_file() and len((out / MANIFEST).read_bytes().splitlines()) >= 3:
            break
        time.sleep(0.01)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    written = len(_records(out))
    assert 3 <= written < count
    assert lines[0].startswith("fin3r extract: interrupted after ") and f"into {out}" in lines[0]
    assert "run the same command again to resume" in lines[0]
    records = _records(out)
    assert sorted(r["file"] for r in records) == sorted(
        p.relative_to(out).as_posix() for p in (out / "images").rglob("*") if p.is_file()
    )
    for record in records[:3]:  # complete images, the frames' own pixels
        i = CameraSpec(rgb, seven_scenes["K"]).stamps().index(record["stamp_ns"])
        np.testing.assert_array_equal(cv2.imread(str(out / record["file"]))[..., ::-1], rgb[i])
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=os.environ)
    assert done.returncode == 0, done.stderr
    assert f"kept {count} of {count} frames ({count - written} written, {written} already done)" in done.stdout
    assert [r["stamp_ns"] for r in _records(out)] == [
        CameraSpec(rgb, seven_scenes["K"]).stamps()[i] for i in range(count)
    ]


@pytest.mark.parametrize("offset_ns", [0, 3_000_000])
def test_depth_topic_gives_each_frame_its_aligned_depth(tmp_path, scene, offset_ns, capsys):
    """Image + depth topics -> extract --depth-topic -> open_sequence (and the sensor teacher) read the source depth."""
    depth_mm = scene[3].copy()
    depth_mm[0, :10] = 0  # holes, as depth drivers write them
    bag = write_bag(tmp_path / "rgbd", [_spec(scene, depth_mm=depth_mm, depth_offset_ns=offset_ns)], storage="mcap")
    out = tmp_path / "ds"
    args = ["extract", str(bag), "--out", str(out), "--quiet", "--depth-topic", "/cam/depth/image_raw"]
    assert main([*args, "--duplicate-level", "0", "--blur-ratio", "0"]) == 0
    assert "without a depth image" not in capsys.readouterr().out
    sequence = open_sequence(out)
    frames = list(sequence)
    assert sequence.kind == "frames" and len(frames) == N
    for i, frame in enumerate(frames):
        want = np.where(depth_mm[i] > 0, depth_mm[i].astype(np.float64) / 1000.0, np.nan).astype(np.float32)
        np.testing.assert_array_equal(frame.depth, want)
        np.testing.assert_array_equal(frame.rgb, scene[0][i])
    label = SensorTeacher().label_one(frames[2])
    assert label.metric and np.array_equal(label.mask, depth_mm[2] > 0)
    assert _records(out)[0]["depth"] == f"depth/cam/{STAMP0}.tiff"


def test_depth_topic_errors_and_frames_without_depth(tmp_path, scene, capsys):
    depth_mm = scene[3]
    bag = write_bag(tmp_path / "rgbd", [_spec(scene, depth_mm=depth_mm, depth_offset_ns=50_000_000)], storage="mcap")
    out = tmp_path / "ds"
    assert main(["extract", str(bag), "--out", str(out), "--quiet", "--depth-topic", "/cam/image_raw/nope"]) == 1
    assert "depth topic(s) ['/cam/image_raw/nope'] are not sensor_msgs/msg/Image topics" in capsys.readouterr().err
    two = ["--depth-topic", "/cam/depth/image_raw", "--depth-topic", "/cam/depth/image_raw"]
    assert main(["extract", str(bag), "--out", str(out), "--quiet", *two]) == 1
    assert "expected one depth topic per colour topic" in capsys.readouterr().err
    assert not (out / SETTINGS).exists()
    # depth 50 ms after each colour image: outside the 20 ms default, every frame is kept without depth
    assert main(["extract", str(bag), "--out", str(out), "--quiet", "--depth-topic", "/cam/depth/image_raw"]) == 0
    assert f"; {N} frames without a depth image within the tolerance" in capsys.readouterr().out
    assert all(f.depth is None for f in FrameDataset(out))
    small = write_bag(tmp_path / "unaligned", [_spec(scene, depth_mm=depth_mm[:, ::2, ::2].copy())], storage="mcap")
    assert main(["extract", str(small), "--out", str(tmp_path / "u"), "--depth-topic", "/cam/depth/image_raw"]) == 1
    assert "expected depth aligned to /cam/image_raw, of its size (120, 160), got (60, 80)" in capsys.readouterr().err
