"""The one runner: preparation (input_max_side), skips counted with reasons, sinks in order, stop and finish."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from gt_backend import GroundTruthModel

from fin3r_lib.data.frame import Frame, SkippedFrame
from fin3r_lib.runner import Runner, RunnerOptions, RunSummary
from fin3r_lib.session import SessionConfig, SessionResult

CONFIG = SessionConfig(keyframe_min_flow_px=5.0, confidence_top_fraction=1.0)


class Recorder:
    """A sink writing every call into a log shared with other sinks."""

    def __init__(self, name: str, log: list[tuple]) -> None:
        self.name, self.log = name, log
        self.frames: list[Frame] = []
        self.results: list[SessionResult] = []
        self.summary: RunSummary | None = None

    def on_frame(self, frame: Frame, result: SessionResult) -> None:
        self.frames.append(frame)
        self.results.append(result)
        self.log.append((self.name, "frame", frame.source))

    def on_skip(self, source: str, reason: str) -> None:
        self.log.append((self.name, "skip", source))

    def on_finish(self, runner: Runner, summary: RunSummary) -> None:
        self.summary = summary
        self.log.append((self.name, "finish", summary.interrupted))


def _frames(data: dict[str, np.ndarray], indices: range | list[int]) -> list[Frame]:
    return [Frame(data["rgb"][i], stamp=i / 30, index=i, source=f"img{i:02d}.png") for i in indices]


def _runner(data: dict[str, np.ndarray], *sinks: Recorder, **options: object) -> tuple[GroundTruthModel, Runner]:
    model = GroundTruthModel.from_fixture(data)
    return model, Runner(model, RunnerOptions(session=CONFIG, **options), sinks)  # type: ignore[arg-type]


def test_skips_are_counted_with_their_reason_and_the_run_goes_on(small_scenes) -> None:
    log: list[tuple] = []
    sink = Recorder("a", log)
    model, runner = _runner(small_scenes, sink)
    good = _frames(small_scenes, [0, 4, 8])
    wrong_size = Frame(small_scenes["rgb"][2][:60], stamp=2 / 30, index=2, source="half.png")
    unknown = Frame(np.full_like(small_scenes["rgb"][0], 7), stamp=6 / 30, index=6)
    items = [good[0], SkippedFrame("broken.jpg", "OpenCV could not decode it"), wrong_size, good[1], unknown, good[2]]
    summary = runner.run(items)

    assert summary.frames == 3 and runner.frames == 3 and not summary.interrupted
    assert [s["source"] for s in summary.skipped] == ["broken.jpg", "half.png", "frame 6 at 0.200000000 s"]
    assert summary.skipped[0]["reason"] == "OpenCV could not decode it"
    assert summary.skipped[1]["reason"].startswith("InputError: ") and "(60, 160)" in summary.skipped[1]["reason"]
    assert "unknown" in summary.skipped[2]["reason"]
    assert [entry[1:] for entry in log if entry[1] == "skip"] == [("skip", s["source"]) for s in summary.skipped]
    # the skipped frames left no trace: the session's poses are the truth of the good frames
    truth = model.relative_poses()[[0, 4, 8]]
    np.testing.assert_allclose([r.frame.cam_to_world for r in sink.results], truth, atol=1e-5)
    doc = json.loads(json.dumps(summary.to_json()))
    assert doc["frames"] == 3 and len(doc["skipped"]) == 3 and doc["interrupted"] is False


class NanPoseModel(GroundTruthModel):
    """Ground truth, except that one image gets a NaN pose."""

    bad_index = 4

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out = super().forward(images)
        last = (images[0, -1].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
        if self.lookup(last) == self.bad_index:
            out["cam_to_world"][0, -1, 0, 0] = float("nan")
        return out


def test_non_finite_output_is_a_skipped_frame(small_scenes) -> None:
    model = NanPoseModel.from_fixture(small_scenes)
    sink = Recorder("a", [])
    summary = Runner(model, RunnerOptions(session=CONFIG), [sink]).run(_frames(small_scenes, [0, 4, 8]))
    assert summary.frames == 2 and [f.index for f in sink.frames] == [0, 8]
    reason = "AlignmentError: expected a finite camera pose from the model, got NaN or inf"
    assert summary.skipped == [{"source": "img04.png", "reason": reason}]


def test_input_max_side_downscales_rgb_depth_and_intrinsics(seven_scenes, small_scenes) -> None:
    k = seven_scenes["K"]
    depth = seven_scenes["depth_mm"][5].astype(np.float32) / 1000.0
    frame = Frame(seven_scenes["rgb"][5], stamp=0.5, index=5, intrinsics=k, depth=depth, source="f5.png")
    sink = Recorder("a", [])
    _, runner = _runner(small_scenes, sink, input_max_side=160)
    prepared = runner.prepare(frame)

    assert prepared.size == (120, 160) and frame.size == (480, 640)  # the input itself is not changed
    np.testing.assert_array_equal(prepared.rgb, small_scenes["rgb"][5])
    # nearest of a 4x reduction by pixel centres: small pixel u is centred on input 4u + 1.5 (as its K says),
    # its nearest input pixels are 4u + 1 and 4u + 2; floor((u + 0.5) * 4) = 4u + 2
    np.testing.assert_array_equal(prepared.depth, depth[2::4, 2::4])
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    # pixel centres at integer coordinates: the edge -0.5 maps to -0.5
    expected = np.array([[fx / 4, 0, (cx + 0.5) / 4 - 0.5], [0, fy / 4, (cy + 0.5) / 4 - 0.5], [0, 0, 1]])
    np.testing.assert_allclose(prepared.intrinsics, expected, rtol=1e-12)
    assert (prepared.stamp, prepared.index, prepared.source) == (0.5, 5, "f5.png")

    result = runner.process(frame)
    assert result is not None and result.frame.size == (120, 160)
    assert sink.frames[0].size == (120, 160)  # sinks see the grid the result is on
    truth = np.where(small_scenes["depth_mm"][5] > 0, small_scenes["depth_mm"][5] / 1000.0, np.nan)
    np.testing.assert_allclose(result.frame.depth, truth, rtol=1e-6, equal_nan=True)


def test_input_max_side_on_an_odd_size_and_when_already_small() -> None:
    k = np.array([[50.0, 0, 49.5], [0, 50.0, 24.5], [0, 0, 1]])
    frame = Frame(np.zeros((50, 100, 3), np.uint8), stamp=0.0, intrinsics=k)
    model = GroundTruthModel(np.zeros((0, 1, 1, 3), np.uint8), np.zeros((0, 1, 1)), np.zeros((0, 4, 4)), k)
    small = Runner(model, RunnerOptions(input_max_side=40)).prepare(frame)
    assert small.size == (20, 40)
    np.testing.assert_allclose(small.intrinsics, [[20.0, 0, 19.5], [0, 20.0, 9.5], [0, 0, 1]], rtol=1e-12)
    assert Runner(model, RunnerOptions(input_max_side=100)).prepare(frame) is frame
    assert Runner(model, RunnerOptions()).prepare(frame) is frame
    with pytest.raises(ValueError, match="input_max_side: expected an integer >= 0, got -1"):
        RunnerOptions(input_max_side=-1)


def test_sinks_are_called_in_order(small_scenes) -> None:
    log: list[tuple] = []
    first, second, third = Recorder("a", log), Recorder("b", log), Recorder("c", log)
    _, runner = _runner(small_scenes, first, second)
    runner.add_sink(third)
    runner.run([*_frames(small_scenes, [0]), SkippedFrame("x.png", "bad"), *_frames(small_scenes, [3])])
    assert log == [
        ("a", "frame", "img00.png"),
        ("b", "frame", "img00.png"),
        ("c", "frame", "img00.png"),
        ("a", "skip", "x.png"),
        ("b", "skip", "x.png"),
        ("c", "skip", "x.png"),
        ("a", "frame", "img03.png"),
        ("b", "frame", "img03.png"),
        ("c", "frame", "img03.png"),
        ("a", "finish", False),
        ("b", "finish", False),
        ("c", "finish", False),
    ]
    assert first.results[1] is second.results[1] is third.results[1]


def _counting(frames: list[Frame], pulled: list[int]) -> Iterator[Frame]:
    for frame in frames:
        pulled.append(frame.index)
        yield frame


def test_stop_is_checked_between_frames_and_max_frames_limits(small_scenes) -> None:
    sink, pulled = Recorder("a", []), []
    _, runner = _runner(small_scenes, sink)
    summary = runner.run(_counting(_frames(small_scenes, range(8)), pulled), stop=lambda: len(sink.frames) >= 3)
    assert summary.interrupted and summary.frames == 3 and sink.summary is summary
    assert pulled == [0, 1, 2]  # the fourth frame was never read

    sink, pulled = Recorder("a", []), []
    _, runner = _runner(small_scenes, sink)
    summary = runner.run(_counting(_frames(small_scenes, range(8)), pulled), max_frames=2)
    assert not summary.interrupted and summary.frames == 2 and pulled == [0, 1]


def test_an_escaping_error_still_finishes_the_sinks(small_scenes) -> None:
    def failing() -> Iterator[Frame]:
        yield from _frames(small_scenes, [0, 3])
        raise OSError("the disk went away")

    sink = Recorder("a", [])
    _, runner = _runner(small_scenes, sink)
    with pytest.raises(OSError, match="the disk went away"):
        runner.run(failing())
    assert sink.summary is not None and sink.summary.interrupted and sink.summary.frames == 2


def test_time_jump_resets_are_counted_and_reset_forgets(small_scenes) -> None:
    sink = Recorder("a", [])
    _, runner = _runner(small_scenes, sink)
    frames = _frames(small_scenes, [0, 5, 10])
    summary = runner.run([frames[1], frames[2], frames[0]])  # time goes backwards at the third
    assert summary.resets == 1 and sink.results[2].was_reset
    np.testing.assert_allclose(sink.results[2].frame.cam_to_world, np.eye(4), atol=1e-9)
    runner.reset()
    assert runner.session.num_keyframes == 0 and runner.session.trajectory == []


def test_predict_prepares_like_the_session(seven_scenes, small_scenes) -> None:
    _, runner = _runner(small_scenes, input_max_side=160)
    rec = runner.predict([Frame(seven_scenes["rgb"][i], stamp=i / 30) for i in (0, 6)])
    assert rec.depth.shape == (2, 120, 160)
    mm = small_scenes["depth_mm"][[0, 6]]
    np.testing.assert_allclose(rec.depth, np.where(mm > 0, mm / 1000.0, np.nan), rtol=1e-6, equal_nan=True)


def test_reset_restarts_the_metric_scale_estimate(small_scenes) -> None:
    from fin3r_lib.session.scale import ScaleConfig

    _, runner = _runner(small_scenes, scale=ScaleConfig(source="depth"))
    metres = small_scenes["depth_mm"] / 1000.0  # the GT backend predicts these depths (model units = metres)

    def sensed(indices: list[int], factor: float) -> list[Frame]:  # a depth sensor reading `factor` x the model
        return [
            Frame(small_scenes["rgb"][i], stamp=i / 30, index=i, depth=(metres[i] * factor).astype(np.float32))
            for i in indices
        ]

    runner.run(sensed([0, 2, 4], 2.0))
    assert runner.scale_estimate.scale == pytest.approx(2.0, rel=1e-6)
    runner.reset()
    assert runner.scale_estimate.scale is None
    runner.run(sensed([6, 8], 3.0))  # only the new world's samples: 3, not the median of the 2s and 3s
    assert runner.scale_estimate.scale == pytest.approx(3.0, rel=1e-6)
