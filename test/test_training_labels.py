"""The sensor teacher and the label cache (manifest, per-frame files, resume, stale detection)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from fin3r_lib.data.frame import Frame
from fin3r_lib.errors import InputError
from fin3r_lib.training.label_cache import LabelCache, LabelCacheError, frame_key, label_frames, merge_part_summaries
from fin3r_lib.training.teachers import build_teacher
from fin3r_lib.training.teachers.sensor import SensorTeacher

K = np.array([[40.0, 0.0, 15.5], [0.0, 40.0, 11.5], [0.0, 0.0, 1.0]])


def frame(index: int, depth: np.ndarray | None, stamp: float | None = None) -> Frame:
    h, w = (24, 32) if depth is None else depth.shape
    rgb = np.full((h, w, 3), index * 20 % 255, np.uint8)
    return Frame(
        rgb=rgb,
        stamp=index / 30 if stamp is None else stamp,
        intrinsics=K,
        index=index,
        depth=depth,
        source=f"test#{index}",
    )


def depth_map(offset: float = 0.0) -> np.ndarray:
    v, u = np.mgrid[0:24, 0:32]
    d = (1.5 + offset + 0.02 * u + 0.01 * v).astype(np.float32)
    d[2:4, 5:9] = 0.0  # a hole
    d[10, 10] = np.nan
    d[20, 30] = 9.0  # beyond max_depth below
    return d


def test_sensor_teacher_masks_holes_and_range() -> None:
    teacher = build_teacher("sensor", max_depth=5.0)
    assert isinstance(teacher, SensorTeacher)
    (out,) = teacher.label([frame(0, depth_map())])
    expected = np.ones((24, 32), bool)
    expected[2:4, 5:9] = False
    expected[10, 10] = False
    expected[20, 30] = False
    np.testing.assert_array_equal(out.mask, expected)
    assert out.metric and np.isnan(out.depth[~expected]).all()
    np.testing.assert_array_equal(out.depth[expected], depth_map()[expected])
    np.testing.assert_array_equal(out.intrinsics, K)
    assert teacher.identity()["max_depth"] == 5.0


def test_sensor_teacher_errors_name_the_frame() -> None:
    with pytest.raises(InputError, match=r"test#3 has no depth image"):
        SensorTeacher().label([frame(3, None)])
    bad = frame(1, np.ones((5, 5), np.float32))
    bad.rgb = np.zeros((24, 32, 3), np.uint8)
    with pytest.raises(InputError, match=r"expected depth of size \(24, 32\), got \(5, 5\)"):
        SensorTeacher().label([bad])
    with pytest.raises(InputError, match="min_depth < max_depth"):
        SensorTeacher(min_depth=2.0, max_depth=1.0)


def test_label_cache_round_trip_resume_and_skips(tmp_path: Path) -> None:
    teacher = SensorTeacher(max_depth=5.0)
    frames = [frame(0, depth_map()), frame(1, None), frame(2, depth_map(0.5))]
    cache = LabelCache(tmp_path / "labels", teacher.identity())
    summary = label_frames(frames, teacher, cache, batch_size=2, progress=False)
    assert (summary.labelled, summary.cached) == (2, 0)
    assert summary.skipped == [
        {
            "source": "test#1",
            "reason": "sensor teacher: test#1 has no depth image (record RGB-D with `fin3r extract --depth-topic`)",
        }
    ]
    names = sorted(p.name for p in (tmp_path / "labels").iterdir())
    assert names == ["camera-00000000.safetensors", "camera-00000002.safetensors", "manifest.json", "summary.json"]

    # independent expectation: depth / mean distance of the valid unprojected points
    d = depth_map(0.5).astype(np.float64)
    valid = np.isfinite(d) & (d > 0) & (d <= 5.0)
    v, u = np.mgrid[0:24, 0:32]
    dist = d * np.sqrt(((u - 15.5) / 40) ** 2 + ((v - 11.5) / 40) ** 2 + 1)
    label = cache.read(frames[2])
    np.testing.assert_array_equal(label.mask, valid)
    np.testing.assert_allclose(label.depth[valid], d[valid] / dist[valid].mean(), rtol=1e-3)  # stored as fp16
    assert label.scale == pytest.approx(dist[valid].mean(), rel=1e-6)

    again = label_frames(frames, teacher, LabelCache(tmp_path / "labels", teacher.identity()), progress=False)
    assert (again.labelled, again.cached, len(again.skipped)) == (0, 2, 1)
    cache.path(frames[0]).unlink()
    resumed = label_frames(frames, teacher, cache, progress=False)
    assert (resumed.labelled, resumed.cached) == (1, 1)


def test_cache_of_another_teacher_setting_is_refused(tmp_path: Path) -> None:
    LabelCache(tmp_path, SensorTeacher(max_depth=5.0).identity())
    with pytest.raises(LabelCacheError, match=r"made differently \(teacher: cache has"):
        LabelCache(tmp_path, SensorTeacher(max_depth=4.0).identity())
    with pytest.raises(LabelCacheError, match="no label cache"):
        LabelCache(tmp_path / "absent", SensorTeacher().identity(), create=False)


def test_stale_and_damaged_label_files_are_detected(tmp_path: Path) -> None:
    teacher = SensorTeacher()
    cache = LabelCache(tmp_path, teacher.identity())
    f = frame(4, depth_map())
    label_frames([f], teacher, cache, progress=False)
    moved = frame(4, depth_map(), stamp=99.0)  # same key, another frame
    assert not cache.has(moved)
    with pytest.raises(LabelCacheError, match="stale"):
        cache.read(moved)
    data = cache.path(f).read_bytes()
    cache.path(f).write_bytes(data[: len(data) // 2])
    with pytest.raises(LabelCacheError, match="damaged"):
        cache.read(f)
    assert label_frames([f], teacher, cache, progress=False).labelled == 1  # rewritten
    assert cache.has(f)
    assert not list(tmp_path.glob(".*.part"))


def test_frame_key_is_file_safe() -> None:
    f = frame(7, None)
    f.camera = "/robot/front camera"
    assert frame_key(f) == "robot_front_camera-00000007"


def test_real_kinect_depth_label(seven_scenes: dict, tmp_path: Path) -> None:
    depth_m = seven_scenes["depth_mm"][0].astype(np.float32) / 1000.0
    rgb = seven_scenes["rgb"][0]
    f = Frame(rgb=rgb, stamp=0.0, intrinsics=seven_scenes["K"], index=0, depth=depth_m, source="7scenes#150")
    teacher = SensorTeacher()
    cache = LabelCache(tmp_path, teacher.identity())
    assert label_frames([f], teacher, cache, progress=False).labelled == 1
    label = cache.read(f)
    valid = seven_scenes["depth_mm"][0] > 0
    assert 0.5 < valid.mean() < 1.0  # the Kinect leaves holes
    k = seven_scenes["K"]
    v, u = np.mgrid[0 : rgb.shape[0], 0 : rgb.shape[1]]
    z = depth_m.astype(np.float64)
    dist = z * np.sqrt(((u - k[0, 2]) / k[0, 0]) ** 2 + ((v - k[1, 2]) / k[1, 1]) ** 2 + 1)
    np.testing.assert_array_equal(label.mask, valid)
    np.testing.assert_allclose(label.depth[valid], z[valid] / dist[valid].mean(), rtol=1e-3)
    assert math.isclose(label.scale, dist[valid].mean(), rel_tol=1e-6)


def test_label_command_reports_frames_without_depth(tmp_path: Path, capsys) -> None:
    import json

    import cv2

    from fin3r_lib.cli.main import main

    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), np.full((16, 20, 3), 40 * i, np.uint8))
    assert main(["label", str(tmp_path), "--teacher", "sensor", "--option", "max_depth=4.5", "--quiet"]) == 1
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["labelled"] == 0 and len(report["skipped"]) == 3
    assert "has no depth image" in report["skipped"][0]["reason"]
    assert "no frame of" in err
    manifest = json.loads((tmp_path / "labels" / "sensor" / "manifest.json").read_text())
    assert manifest["teacher"]["max_depth"] == 4.5
    # the same folder with another setting is refused, naming the difference
    assert main(["label", str(tmp_path), "--option", "max_depth=3", "--quiet"]) == 1
    assert "made differently" in capsys.readouterr().err
    assert main(["label", str(tmp_path), "--option", "max_depth"]) == 1
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_split_labelling_covers_every_frame_once_and_merges_the_summaries(tmp_path: Path) -> None:
    teacher = SensorTeacher(max_depth=5.0)
    frames = [frame(i, None if i == 4 else depth_map(0.1 * i)) for i in range(7)]
    whole = LabelCache(tmp_path / "whole", teacher.identity())
    label_frames(frames, teacher, whole, batch_size=2, progress=False)
    split = LabelCache(tmp_path / "split", teacher.identity())
    done = []
    for part in range(3):
        summary = label_frames(frames, teacher, split, 2, len(frames), False, part=part, parts=3)
        done.append(sorted(p.name for p in (tmp_path / "split").glob("camera-*")))
        assert not (tmp_path / "split" / "summary.json").exists()
        assert (tmp_path / "split" / f"summary.part-{part}-of-3.json").is_file()
        assert (summary.labelled, len(summary.skipped)) == ((3, 1, 2)[part], (0, 1, 0)[part])
    key = lambda i: f"camera-{i:08d}.safetensors"  # noqa: E731
    assert done[0] == [key(0), key(3), key(6)]  # part 0 of 3: items 0, 3, 6
    assert done[1] == [key(0), key(1), key(3), key(6)]  # part 1: 1 (and 4, which has no depth)
    merged = merge_part_summaries(tmp_path / "split", 3)
    assert sorted(p.name for p in (tmp_path / "split").iterdir()) == sorted(
        p.name for p in (tmp_path / "whole").iterdir()
    )
    for f in frames[:4] + frames[5:]:
        got, want = split.read(f), whole.read(f)
        np.testing.assert_array_equal(got.depth, want.depth)
        np.testing.assert_array_equal(got.mask, want.mask)
        assert (got.scale, got.shift) == (want.scale, want.shift)
    single = json.loads((tmp_path / "whole" / "summary.json").read_text())
    assert json.loads((tmp_path / "split" / "summary.json").read_text()) == merged
    assert {k: merged[k] for k in single} == single
    assert merged["processes"] == [
        {"labelled": 3, "cached": 0, "skipped": 0},
        {"labelled": 1, "cached": 0, "skipped": 1},
        {"labelled": 2, "cached": 0, "skipped": 0},
    ]
    with pytest.raises(LabelCacheError, match=r"expected the summaries of all 2 processes, missing"):
        merge_part_summaries(tmp_path / "split", 2)
    with pytest.raises(InputError, match="expected 0 <= part < parts, got part 2 of 2"):
        label_frames(frames, teacher, split, part=2, parts=2)
