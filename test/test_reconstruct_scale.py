"""`fin3r reconstruct --scale-source odometry|depth` end to end on 7-Scenes ground truth whose unit is unknown.

The backend serves the truth at a random scale per call (2-4 model units per metre); the input (a frame
dataset or a bag) carries the camera poses with 1 mm noise and the depth with 1 % noise. The written
trajectory and depth must be the ground truth in metres, every frame, those written before the scale was
known included.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bag_fixtures import CameraSpec, write_bag
from gt_backend import GroundTruthModel

from fin3r_lib.cli.main import main
from fin3r_lib.data.dataset import FrameDataset, FrameDatasetWriter
from fin3r_lib.data.frame import Frame
from fin3r_lib.output_folder import OutputFolder
from fin3r_lib.outputs import read_tum
from fin3r_lib.runner import Runner, RunnerOptions
from fin3r_lib.session import SessionConfig
from fin3r_lib.session.scale import ScaleConfig

FRAMES = list(range(0, 50, 2))  # 25 frames, 0.21 m of camera motion
SETTINGS = ["--min-confidence", "0", "--confidence-top-fraction", "1", "--context-size", "3"]
#: 0.21 m of motion in all: a shorter baseline than the default 0.3 m
SCALE = ["--scale-min-baseline-m", "0.1", "--scale-min-pair-m", "0.02"]


def _noisy(small_scenes: dict[str, np.ndarray], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(poses with 1 mm noise on the position, depth in mm with 1 % noise per pixel) of FRAMES."""
    rng = np.random.default_rng(seed)
    poses = small_scenes["poses"][FRAMES].copy()
    poses[:, :3, 3] += rng.normal(scale=0.001, size=(len(FRAMES), 3))
    depth = small_scenes["depth_mm"][FRAMES].astype(np.float64)
    noisy = np.round(depth * (1 + rng.normal(scale=0.01, size=depth.shape)))
    return poses, np.where(depth > 0, noisy, 0).astype(np.uint16)


def _dataset(
    root: Path, small_scenes: dict[str, np.ndarray], poses: np.ndarray, depth_mm: np.ndarray, without: range = range(0)
) -> Path:
    """A frame dataset of FRAMES with poses and depth (none for the frames numbered in `without`)."""
    writer = FrameDatasetWriter(root)
    for n, i in enumerate(FRAMES):
        depth = np.where(depth_mm[n] > 0, depth_mm[n] / 1000.0, np.nan).astype(np.float32)
        frame = Frame(
            small_scenes["rgb"][i],
            10.0 + n / 15,
            camera="cam",
            intrinsics=small_scenes["K"],
            cam_to_world=None if n in without else poses[n],
            depth=None if n in without else depth,
            index=n,
        )
        writer.add(frame, True, "test")
    writer.close()
    return root


def _bag(root: Path, small_scenes: dict[str, np.ndarray], poses: np.ndarray, depth_mm: np.ndarray) -> Path:
    camera = CameraSpec(
        rgb=small_scenes["rgb"][FRAMES], K=small_scenes["K"], poses=poses, distortion=[0.0] * 5, depth_mm=depth_mm
    )
    return write_bag(root, [camera])


def _errors(out: Path, small_scenes: dict[str, np.ndarray], model: GroundTruthModel) -> dict[str, float]:
    """Relative errors of what was written against the metric ground truth (the served, orthonormalised poses)."""
    truth = model.relative_poses()[FRAMES]
    _, poses = read_tum(out / "trajectory.txt")
    assert len(poses) == len(FRAMES)
    t, t_true = poses[:, :3, 3], truth[:, :3, 3]
    far = np.linalg.norm(t_true, axis=1) > 0.05
    position = np.linalg.norm(t - t_true, axis=1)[far] / np.linalg.norm(t_true, axis=1)[far]
    ratios = []
    for n, i in enumerate(FRAMES):
        depth = np.load(out / "depth" / f"{n:06d}.npy")
        valid = small_scenes["depth_mm"][i] > 0
        ratios.append(np.median(depth[valid] / (small_scenes["depth_mm"][i][valid] / 1000.0)))
    return {
        "position_max": float(position.max()),
        "position_median": float(np.median(position)),
        "depth_max": float(np.max(np.abs(np.array(ratios) - 1.0))),
    }


@pytest.mark.parametrize("source", ["odometry", "depth"])
@pytest.mark.parametrize("container", ["dataset", "bag"])
def test_reconstruct_writes_metric_outputs(small_scenes, tmp_path, monkeypatch, capsys, source, container) -> None:
    import fin3r_lib.cli.reconstruct_run as reconstruct

    model = GroundTruthModel.from_fixture(small_scenes, scale_range=(2.0, 4.0), seed=3)
    monkeypatch.setattr(reconstruct, "_load_model", lambda args: model)
    poses, depth_mm = _noisy(small_scenes, seed=4)
    make = _dataset if container == "dataset" else _bag
    data = make(tmp_path / container, small_scenes, poses, depth_mm)
    extra = ["--depth-topic", "/cam/depth/image_raw"] if container == "bag" and source == "depth" else []
    out = tmp_path / "out"
    args = [str(data), "--out", str(out), "--model", "vggt-tiny", "--checkpoint", "none", "--quiet", *SETTINGS]
    args += [*SCALE, *extra]
    assert main(["reconstruct", *args, "--scale-source", source]) == 0
    assert f"{source} scale" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == len(FRAMES) and summary["keyframes"] >= 5
    scale = summary["scale"]
    assert scale["source"] == source and 1 / 4.0 <= scale["scale"] <= 1 / 2.0  # metres per model unit
    errors = _errors(out, small_scenes, model)
    print(f"{container} {source}: scale {scale['scale']:.6f} spread {scale['spread']:.4f}, errors {errors}")
    assert errors["position_max"] < 0.01 and errors["depth_max"] < 0.01


def test_reconstruct_without_scale_stays_in_model_units(small_scenes, tmp_path, monkeypatch) -> None:
    import fin3r_lib.cli.reconstruct_run as reconstruct

    model = GroundTruthModel.from_fixture(small_scenes, scale_range=(2.0, 4.0), seed=3)
    monkeypatch.setattr(reconstruct, "_load_model", lambda args: model)
    poses, depth_mm = _noisy(small_scenes, seed=4)
    data = _dataset(tmp_path / "dataset", small_scenes, poses, depth_mm)
    out = tmp_path / "out"
    args = [str(data), "--out", str(out), "--model", "vggt-tiny", "--checkpoint", "none", "--quiet", *SETTINGS]
    assert main(["reconstruct", *args]) == 0
    assert json.loads((out / "summary.json").read_text())["scale"]["scale"] is None
    assert _errors(out, small_scenes, model)["depth_max"] > 0.5  # 2-4 units per metre: the check above can fail


def test_reconstruct_refuses_a_scale_source_the_input_cannot_give(small_scenes, tmp_path, capsys) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    import cv2

    cv2.imwrite(str(folder / "a.png"), small_scenes["rgb"][0])
    base = ["reconstruct", str(folder), "--model", "vggt-tiny"]
    assert main([*base, "--out", str(tmp_path / "o1"), "--scale-source", "depth"]) == 1
    assert "--scale-source depth: expected an input with depth (a frame dataset or a bag), got a folder of images" in (
        capsys.readouterr().err
    )
    bag = write_bag(tmp_path / "bag", [CameraSpec(rgb=small_scenes["rgb"][:2], K=small_scenes["K"])])
    assert (
        main(
            ["reconstruct", str(bag), "--model", "vggt-tiny", "--out", str(tmp_path / "o2"), "--scale-source", "depth"]
        )
        == 1
    )
    assert "expected --depth-topic (the aligned depth topic), got none" in capsys.readouterr().err


def _run(model, out: Path, frames: list[Frame], source: str, stop_after: int | None = None, resume: bool = False):
    """A runner writing into `out` as `fin3r reconstruct` does (interrupted after `stop_after` frames)."""
    folder = OutputFolder(out, {"test": source}, resume=resume)
    session = SessionConfig(min_confidence=0.0, confidence_top_fraction=1.0, context_size=3)
    scale = ScaleConfig(source=source, min_baseline_m=0.1, min_pair_m=0.02)
    runner = Runner(model, RunnerOptions(session=session, scale=scale), [folder])
    if resume:
        folder.restore(runner)
    stop = None if stop_after is None else (lambda: runner.frames >= stop_after)
    return runner.run(frames[runner.items :], stop=stop)


@pytest.mark.parametrize("source", ["odometry", "depth"])
@pytest.mark.parametrize("stop_after", [3, 15])  # odometry: before the baseline is reached, after
def test_resumed_run_keeps_the_scale_estimate(small_scenes, tmp_path, source, stop_after) -> None:
    poses, depth_mm = _noisy(small_scenes, seed=4)
    frames = list(FrameDataset(_dataset(tmp_path / "dataset", small_scenes, poses, depth_mm)))
    whole = _run(
        GroundTruthModel.from_fixture(small_scenes, scale_range=(2.0, 4.0), seed=3), tmp_path / "a", frames, source
    )
    model = GroundTruthModel.from_fixture(small_scenes, scale_range=(2.0, 4.0), seed=3)
    part = _run(model, tmp_path / "b", frames, source, stop_after=stop_after)
    assert part.interrupted and part.frames == stop_after
    if source == "odometry" and stop_after == 3:
        assert part.scale["scale"] is None and "too little baseline" in part.scale["status"]
    resumed = _run(model, tmp_path / "b", frames, source, resume=True)
    assert not resumed.interrupted and resumed.frames == whole.frames == len(FRAMES)
    assert whole.scale["scale"] is not None and whole.scale["samples"] == resumed.scale["samples"]
    assert resumed.scale["scale"] == pytest.approx(whole.scale["scale"], rel=1e-9, abs=0)
    assert resumed.scale["spread"] == pytest.approx(whole.scale["spread"], rel=1e-9, abs=1e-12)
    print(f"{source} stop {stop_after}: {whole.scale['scale']!r} vs resumed {resumed.scale['scale']!r}")
    (_, a), (_, b) = read_tum(tmp_path / "a" / "trajectory.txt"), read_tum(tmp_path / "b" / "trajectory.txt")
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-9)
    for n in range(len(FRAMES)):
        name = f"{n:06d}.npy"
        np.testing.assert_allclose(
            np.load(tmp_path / "b" / "depth" / name), np.load(tmp_path / "a" / "depth" / name), rtol=1e-6
        )


@pytest.mark.parametrize("source", ["odometry", "depth"])
def test_frames_without_a_sample_are_counted(small_scenes, tmp_path, monkeypatch, capsys, source) -> None:
    import fin3r_lib.cli.reconstruct_run as reconstruct

    model = GroundTruthModel.from_fixture(small_scenes, scale_range=(2.0, 4.0), seed=3)
    monkeypatch.setattr(reconstruct, "_load_model", lambda args: model)
    poses, depth_mm = _noisy(small_scenes, seed=4)
    without = range(0, len(FRAMES), 3)  # frames 0, 3, ..., 24 carry neither pose nor depth
    data = _dataset(tmp_path / "dataset", small_scenes, poses, depth_mm, without)
    out = tmp_path / "out"
    args = [str(data), "--out", str(out), "--model", "vggt-tiny", "--checkpoint", "none", "--quiet", *SETTINGS, *SCALE]
    assert main(["reconstruct", *args, "--scale-source", source]) == 0
    records = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    # odometry samples keyframes only: the keyframes among the frames without a pose
    counted = [r for r in records if r["index"] in without and (r["keyframe"] or source == "depth")]
    expected = len(counted)
    assert expected >= 1
    scale = json.loads((out / "summary.json").read_text())["scale"]
    assert scale["frames_without_sample"] == expected and scale["scale"] is not None
    what = "keyframes without a pose" if source == "odometry" else "frames without depth"
    printed = capsys.readouterr().out
    assert f"({expected} {what})" in printed, printed
