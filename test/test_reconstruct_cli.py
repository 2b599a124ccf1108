"""`fin3r reconstruct` end to end on the real 7-Scenes frames with the tiny models, and its frame sources."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import open3d as o3d
import pytest
from bag_fixtures import CameraSpec, write_bag
from gt_backend import GroundTruthStreamingModel

from fin3r_lib.cli.main import main
from fin3r_lib.data.dataset import FrameDatasetWriter
from fin3r_lib.data.frame import Frame
from fin3r_lib.data.sources import frame_count, input_kind, open_frames
from fin3r_lib.errors import InputError
from fin3r_lib.outputs import read_tum

STEP = 10  # every 10th of the 50 frames: 5 frames, enough camera motion for several keyframes


@pytest.fixture
def seeded_random_vggt(monkeypatch) -> None:
    """`--checkpoint none` VGGT with the demo's seeded random weights (finite focal lengths), until the loader seeds."""
    import fin3r_lib.cli.reconstruct_run as reconstruct
    from fin3r_ros.demo import random_model

    load = reconstruct._load_model
    monkeypatch.setattr(
        reconstruct,
        "_load_model",
        lambda args: random_model(args.model) if args.checkpoint == "none" and "vggt" in args.model else load(args),
    )


@pytest.fixture(scope="module")
def image_folder(seven_scenes_dir: Path, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    for src in sorted(seven_scenes_dir.glob("frame-*.color.png"))[::STEP]:
        shutil.copy(src, folder / src.name)
    return folder


@pytest.fixture(scope="module")
def video_file(seven_scenes, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "kitchen.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 3.0, (640, 480))
    assert writer.isOpened()
    for rgb in seven_scenes["rgb"][::STEP]:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _check_outputs(out: Path, n: int, stamps: np.ndarray) -> None:
    depth_png = sorted((out / "depth").glob("*.png"))
    assert len(depth_png) == len(list((out / "depth").glob("*.npy"))) == len(list((out / "confidence").glob("*.npy")))
    assert len(depth_png) == n
    mm = cv2.imread(str(depth_png[0]), cv2.IMREAD_UNCHANGED)
    metres = np.load(depth_png[0].with_suffix(".npy"))
    assert mm.dtype == np.uint16 and mm.shape == metres.shape == (480, 640) and metres.dtype == np.float32
    valid = np.isfinite(metres) & (metres > 0) & (metres < 65.5)
    np.testing.assert_allclose(mm[valid], np.round(metres[valid] * 1000), atol=1)

    summary = json.loads((out / "summary.json").read_text())
    cloud = o3d.io.read_point_cloud(str(out / "map.ply"))
    assert len(cloud.points) == summary["map_points"] > 0 and cloud.has_colors()
    assert summary["frames"] == n and summary["keyframes"] >= 1

    # TUM, parsed as plain text: t tx ty tz qx qy qz qw, first pose the world origin
    rows = [line.split() for line in (out / "trajectory.txt").read_text().splitlines() if not line.startswith("#")]
    table = np.array(rows, dtype=np.float64)
    assert table.shape == (n, 8)
    np.testing.assert_allclose(table[:, 0], stamps, atol=1e-9)
    np.testing.assert_allclose(table[0, 1:], [0, 0, 0, 0, 0, 0, 1], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(table[:, 4:], axis=1), 1.0, atol=1e-6)

    intrinsics = json.loads((out / "intrinsics.json").read_text())
    assert (intrinsics["height"], intrinsics["width"]) == (480, 640) and len(intrinsics["frames"]) == n
    for preview in ("map_preview.png", "depth_preview.png"):
        assert cv2.imread(str(out / preview)) is not None


@pytest.mark.slow
def test_reconstruct_image_folder_writes_every_output(image_folder, tmp_path, capsys, seeded_random_vggt) -> None:
    out = tmp_path / "out"
    args = [str(image_folder), "--out", str(out), "--model", "vggt-tiny", "--checkpoint", "none", "--device", "cpu"]
    assert main(["reconstruct", *args, "--keyframe-min-flow-px", "5", "--context-size", "3"]) == 0
    _check_outputs(out, 5, np.arange(5) / 30.0)
    assert "5 frames" in capsys.readouterr().out
    assert json.loads((out / "summary.json").read_text())["settings"]["session"]["context_size"] == 3


@pytest.mark.slow
def test_reconstruct_video_with_max_frames(video_file, tmp_path, seeded_random_vggt) -> None:
    out = tmp_path / "out"
    args = [str(video_file), "--out", str(out), "--model", "vggt-tiny", "--checkpoint", "none", "--max-frames", "3"]
    assert main(["reconstruct", *args, "--device", "cpu", "--quiet"]) == 0
    _check_outputs(out, 3, np.arange(3) / 3.0)  # the video's own rate (3 fps)


def test_reconstruct_bag_with_the_streaming_model(seven_scenes, tmp_path, monkeypatch) -> None:
    import fin3r_lib.cli.reconstruct_run as reconstruct

    # random CUT3R weights fit negative focal lengths (frames rejected): serve the truth as a streaming backend
    model = GroundTruthStreamingModel.from_fixture(seven_scenes)
    monkeypatch.setattr(reconstruct, "_load_model", lambda args: model)
    rgb = seven_scenes["rgb"][::STEP][:3]
    bag = write_bag(tmp_path / "bag", [CameraSpec(rgb=rgb, K=seven_scenes["K"])], storage="mcap")
    out = tmp_path / "out"
    args = [str(bag), "--out", str(out), "--model", "cut3r-tiny", "--checkpoint", "none", "--device", "cpu"]
    assert main(["reconstruct", *args, "--quiet", "--min-confidence", "0", "--confidence-top-fraction", "1"]) == 0
    stamps, poses = read_tum(out / "trajectory.txt")
    assert len(stamps) == 3 and np.all(np.diff(stamps) > 0)
    np.testing.assert_allclose(poses[0], np.eye(4), atol=1e-6)
    truth = np.linalg.inv(model.poses[0]) @ model.poses[::STEP][:3]
    np.testing.assert_allclose(poses, truth, atol=1e-6)


def test_reconstruct_reports_bad_input_and_model(tmp_path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["reconstruct", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "o")]) == 1
    assert "expected a bag" in capsys.readouterr().err
    assert main(["reconstruct", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((8, 8, 3), np.uint8))
    assert main(["reconstruct", str(folder), "--out", str(tmp_path / "o"), "--model", "no-such-model"]) == 1
    assert "unknown model 'no-such-model'" in capsys.readouterr().err


def test_sources_dispatch_by_kind(seven_scenes, image_folder, video_file, tmp_path) -> None:
    assert input_kind(image_folder) == "images" and frame_count(image_folder) == 5
    folder_frames = list(open_frames(image_folder, fps=10.0))
    np.testing.assert_array_equal(folder_frames[1].rgb, seven_scenes["rgb"][STEP])
    assert [f.stamp for f in folder_frames] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])

    assert input_kind(video_file) == "video" and frame_count(video_file) == 5
    video_frames = list(open_frames(video_file))
    assert len(video_frames) == 5 and video_frames[0].rgb.shape == (480, 640, 3)
    assert np.abs(video_frames[2].rgb.astype(int) - seven_scenes["rgb"][2 * STEP]).mean() < 4  # MJPEG loss

    dataset = tmp_path / "dataset"
    writer = FrameDatasetWriter(dataset)
    for i in range(3):
        writer.add(
            Frame(seven_scenes["rgb"][i], 100.0 + i, camera="cam", intrinsics=seven_scenes["K"], index=i), True, "test"
        )
    writer.close()
    assert input_kind(dataset) == "dataset" and frame_count(dataset) == 3
    frames = list(open_frames(dataset))
    assert [f.stamp for f in frames] == [100.0, 101.0, 102.0]
    np.testing.assert_array_equal(frames[2].rgb, seven_scenes["rgb"][2])
    np.testing.assert_allclose(frames[0].intrinsics, seven_scenes["K"])

    bag = write_bag(tmp_path / "bag", [CameraSpec(rgb=seven_scenes["rgb"][:2], K=seven_scenes["K"])], storage="sqlite3")
    assert input_kind(bag) == "bag" and frame_count(bag) is None
    bag_frames = list(open_frames(bag))
    np.testing.assert_array_equal(bag_frames[1].rgb, seven_scenes["rgb"][1])

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="expected a folder of images"):
        input_kind(empty)
