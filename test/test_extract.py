"""Frame selection, the frame dataset (write, read back, resume) and `fin3r extract` end to end, on real bags."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from bag_fixtures import PERIOD_NS, T0_NS, CameraSpec, rigid, write_bag

from fin3r_lib.cli.main import main
from fin3r_lib.data import dataset as dataset_module
from fin3r_lib.data.dataset import MANIFEST, SUMMARY, DatasetError, FrameDataset, FrameDatasetWriter, write_atomic
from fin3r_lib.data.extract import ExtractOptions, extract_frames
from fin3r_lib.data.frame import Frame
from fin3r_lib.data.selection import FrameSelector, SelectionConfig
from fin3r_lib.errors import InputError

N = 12


@pytest.fixture(scope="module")
def scene(seven_scenes):
    return seven_scenes["rgb"][:N], rigid(seven_scenes["poses"][:N]), seven_scenes["K"]


@pytest.fixture(scope="module")
def bag(tmp_path_factory, scene):
    rgb, poses, K = scene
    return write_bag(tmp_path_factory.mktemp("bags") / "log", [CameraSpec(rgb, K, poses, encoding="bgr8")])


def _frames(images) -> list[Frame]:
    return [Frame(rgb=im, stamp=i * 0.1, index=i) for i, im in enumerate(images)]


def test_selection_drops_injected_duplicates_and_a_blurred_frame(tmp_path, scene):
    rgb, _, K = scene
    images = [*rgb[:4], rgb[3], rgb[3], *rgb[4:8], cv2.GaussianBlur(rgb[7], (0, 0), 3.0), *rgb[8:]]
    bag = write_bag(tmp_path / "log", [CameraSpec(np.stack(images), K, encoding="jpeg")])
    result = extract_frames([bag], tmp_path / "ds", ExtractOptions(), progress=False)
    decisions = [json.loads(line) for line in (tmp_path / "ds" / "selection.jsonl").read_text().splitlines()]
    dropped = {d["index"]: d["reason"] for d in decisions if not d["keep"]}
    assert sorted(dropped) == [4, 5, 10] and result.kept == len(images) - 3
    assert dropped[4].startswith("near-duplicate") and dropped[5].startswith("near-duplicate")
    assert dropped[10].startswith("blur:")
    assert decisions[0]["reason"] == "first frame of the camera"
    assert [r["index"] for r in FrameDataset(tmp_path / "ds").records] == [
        i for i in range(len(images)) if i not in dropped
    ]
    summary = json.loads((tmp_path / "ds" / SUMMARY).read_text())
    assert summary["decisions"] == {
        "first frame of the camera": 1,
        "passed rate, blur and duplicate checks": 11,
        "near-duplicate": 2,
        "blur": 1,
    }


def test_time_range_skips_images_outside(tmp_path, bag):
    frames_kept = extract_frames([bag], tmp_path / "ds", ExtractOptions(start=0.25, end=0.75), progress=False)
    assert [r["index"] for r in FrameDataset(tmp_path / "ds").records] == [0, 1, 2, 3, 4]
    assert frames_kept.reports[0].outside_range == N - 5


def test_keyframes_by_motion_and_rate(scene):
    selector = FrameSelector(SelectionConfig(min_flow=20.0))
    decisions = [selector.decide(f) for f in _frames(scene[0])]
    kept = [i for i, d in enumerate(decisions) if d.keep]
    assert 2 <= len(kept) < N // 2
    assert all(decisions[i].flow_px >= 20.0 and decisions[i].reason.startswith("keyframe") for i in kept[1:])
    assert all(d.reason.startswith("low motion") and d.flow_px < 20.0 for d in decisions if not d.keep)
    rate = FrameSelector(SelectionConfig(max_rate=4.0, blur_ratio=None, duplicate_level=None))
    assert [rate.decide(f).keep for f in _frames(scene[0][:6])] == [True, False, False, True, False, False]
    with pytest.raises(InputError, match="max_rate must be > 0"):
        SelectionConfig(max_rate=0.0)


def test_dataset_reads_back_pixels_K_and_poses(tmp_path, bag, scene):
    rgb, poses, K = scene
    result = extract_frames([bag], tmp_path / "ds", ExtractOptions(), progress=False)
    assert result.kept == result.written == N == result.considered
    ds = FrameDataset(tmp_path / "ds")
    assert len(ds) == N
    for i, frame in enumerate(ds):
        np.testing.assert_array_equal(frame.rgb, rgb[i])
        np.testing.assert_array_equal(frame.intrinsics, K)
        np.testing.assert_allclose(frame.cam_to_world, poses[i], atol=1e-6)
        assert frame.stamp_ns == T0_NS + i * PERIOD_NS and frame.camera == "cam"
        assert frame.stamp == pytest.approx(T0_NS * 1e-9 + 0.1 * i, abs=1e-6)
    record = ds.records[0]
    assert record["file"] == f"images/cam/{T0_NS}.png" and record["size"] == [480, 640]
    assert record["source"] == f"{bag}#/cam/image_raw@0" and record["depth"] is None
    assert record["reason"] == "first frame of the camera" and record["frame_id"] == "cam_optical"
    assert ds.summary["frames_kept"] == N and ds.summary["reports"][0]["lost"] == 0
    selection = (tmp_path / "ds" / "selection.jsonl").read_text().splitlines()
    assert len(selection) == N and json.loads(selection[0])["keep"] is True


def test_jpeg_output_within_jpeg_tolerance(tmp_path, bag, scene):
    extract_frames([bag], tmp_path / "ds", ExtractOptions(image_format="jpeg", jpeg_quality=90), progress=False)
    ds = FrameDataset(tmp_path / "ds")
    assert ds.records[0]["file"].endswith(".jpg")
    mse = np.mean((ds[3].rgb.astype(np.float64) - scene[0][3]) ** 2)
    assert 10 * np.log10(255**2 / mse) > 30


class Interrupted(Exception):
    pass


def _files(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_resume_after_interruption_gives_the_same_output(tmp_path, bag):
    options = ExtractOptions(selection=SelectionConfig(min_flow=8.0))
    full = extract_frames([bag], tmp_path / "full", options, progress=False)
    assert 2 < full.kept < N

    seen = []

    def stop_after_five(frame, decision):
        seen.append(frame.index)
        if len(seen) == 5:
            raise Interrupted

    with pytest.raises(Interrupted):
        extract_frames([bag], tmp_path / "cut", options, progress=False, on_frame=stop_after_five)
    cut = tmp_path / "cut"
    assert not (cut / SUMMARY).exists() and not list(cut.rglob("*.part"))
    written_before = len((cut / MANIFEST).read_text().splitlines())
    assert 0 < written_before < full.kept
    with (cut / MANIFEST).open("a") as f:  # the interruption also cut a manifest line in half
        f.write('{"file": "images/cam/0000')
    resumed = extract_frames([bag], cut, options, progress=False)
    assert resumed.skipped == written_before and resumed.written == full.kept - written_before
    assert _files(cut) == _files(tmp_path / "full")
    again = extract_frames([bag], cut, options, progress=False)  # idempotent
    assert again.written == 0 and _files(cut) == _files(tmp_path / "full")


def test_other_settings_in_the_same_folder_are_refused(tmp_path, bag):
    extract_frames([bag], tmp_path / "ds", ExtractOptions(), progress=False)
    with pytest.raises(DatasetError, match=r"other settings \(\['image_format'\]\)"):
        extract_frames([bag], tmp_path / "ds", ExtractOptions(image_format="jpeg"), progress=False)
    with pytest.raises(DatasetError, match="image format must be one of"):
        FrameDatasetWriter(tmp_path / "x", image_format="tiff")
    with pytest.raises(DatasetError, match=r"no manifest\.jsonl"):
        FrameDataset(tmp_path / "x")


def test_cli_extract_end_to_end(tmp_path, bag, capsys):
    out = tmp_path / "ds"
    rc = main(["extract", str(bag), "--out", str(out), "--quiet", "--format", "jpeg", "--max-rate", "5"])
    assert rc == 0
    assert f"kept {N // 2} of {N} frames" in capsys.readouterr().out
    assert len(FrameDataset(out)) == N // 2
    assert main(["extract", str(bag), "--list"]) == 0
    assert "/cam/image_raw\tsensor_msgs/msg/Image\t12" in capsys.readouterr().out


def test_cli_missing_topic_names_the_image_topics_present(tmp_path, bag, capsys):
    rc = main(["extract", str(bag), "--out", str(tmp_path / "ds"), "--topic", "/front/image_raw", "--quiet"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "fin3r extract: error: image topic(s) ['/front/image_raw'] not in" in err
    assert "image topics present: ['/cam/image_raw']" in err


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, OSError])
def test_an_interrupted_atomic_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch, interruption):
    """Ctrl-C (the CLI's SIGTERM handler raises the same way) or a disk error while a file is written: the
    file keeps its old bytes and no `.NAME.part` is left in the folder (a real interrupt of `fin3r extract`
    once left one beside the images, which the manifest does not list)."""
    path = tmp_path / "frame.png"
    path.write_bytes(b"old")

    def interrupted_fsync(fd: int) -> None:
        raise interruption("interrupted while writing")

    monkeypatch.setattr(dataset_module.os, "fsync", interrupted_fsync)
    with pytest.raises(interruption):
        write_atomic(path, b"new bytes")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frame.png"]
    assert path.read_bytes() == b"old"
