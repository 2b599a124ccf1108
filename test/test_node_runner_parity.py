"""`fin3r reconstruct` and the node (real rclpy, frames as sensor_msgs/Image) run the same runner: same options,
bit-identical depth, confidence and poses on the shared 7-Scenes frames (vggt-tiny, seeded random weights)."""

from __future__ import annotations

import json

import numpy as np

import fin3r_lib.cli.reconstruct_run as reconstruct
from fin3r_lib.cli.main import main
from fin3r_lib.data.frame import Frame
from fin3r_lib.output_folder import OutputFolder
from fin3r_lib.runner import Runner, RunSummary
from fin3r_lib.session import SessionResult
from fin3r_ros.demo import DEFAULT_PATTERN, play, random_model, read_frames

FRAMES = 5
MAX_SIDE = 96
SEED = 3


class Capture:
    """A sink keeping every result's exact pose, depth and keyframe flag."""

    def __init__(self) -> None:
        self.poses: list[np.ndarray] = []
        self.depths: list[np.ndarray] = []
        self.keyframes: list[bool] = []

    def on_frame(self, frame: Frame, result: SessionResult) -> None:
        self.poses.append(result.frame.cam_to_world.copy())
        self.depths.append(result.frame.depth.copy())
        self.keyframes.append(result.is_keyframe)

    def on_skip(self, source: str, reason: str) -> None:
        raise AssertionError(f"{source} skipped: {reason}")

    def on_finish(self, runner: Runner, summary: RunSummary) -> None:
        pass


def _records(out) -> list[dict]:
    return [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]


def test_cli_and_node_give_identical_results(seven_scenes_dir, tmp_path, monkeypatch) -> None:
    cli_capture, node_capture = Capture(), Capture()

    class CapturedRunner(Runner):  # the CLI's own runner, with one more sink
        def __init__(self, model, options, sinks) -> None:
            super().__init__(model, options, [*sinks, cli_capture])

    monkeypatch.setattr(reconstruct, "Runner", CapturedRunner)
    cli_out, node_out = tmp_path / "cli", tmp_path / "node"
    args = ["reconstruct", str(seven_scenes_dir), "--out", str(cli_out), "--model", "vggt-tiny"]
    args += ["--checkpoint", "none", "--seed", str(SEED), "--device", "cpu", "--pattern", DEFAULT_PATTERN]
    args += ["--input-max-side", str(MAX_SIDE), "--max-frames", str(FRAMES), "--quiet", "--fps", "30"]
    assert main(args) == 0

    params = {"input_max_side": MAX_SIDE}
    frames = read_frames(seven_scenes_dir, DEFAULT_PATTERN, 30.0)
    model = random_model("vggt-tiny", seed=SEED)
    sinks = [OutputFolder(node_out, params), node_capture]
    _, counts = play(frames, None, params, model=model, max_frames=FRAMES, sinks=sinks)
    assert counts == {"sent": FRAMES, "published": FRAMES, "rejected": 0}

    assert len(cli_capture.poses) == len(node_capture.poses) == FRAMES
    assert node_capture.keyframes == cli_capture.keyframes
    for cli_pose, node_pose in zip(cli_capture.poses, node_capture.poses, strict=True):
        np.testing.assert_array_equal(node_pose, cli_pose)
    for cli_depth, node_depth in zip(cli_capture.depths, node_capture.depths, strict=True):
        assert cli_depth.shape == (72, 96)  # 640x480 downscaled to input_max_side 96
        np.testing.assert_array_equal(node_depth, cli_depth)
    translations = np.stack(cli_capture.poses)[:, :3, 3]
    assert np.ptp(translations, axis=0).max() > 0, "every pose at one place: the comparison would be empty"

    # and the files both write: same depth/confidence arrays, same trajectory text and stamps
    cli_records, node_records = _records(cli_out), _records(node_out)
    assert [r["stamp_ns"] for r in node_records] == [r["stamp_ns"] for r in cli_records]
    for cli_record, node_record in zip(cli_records, node_records, strict=True):
        for kind in ("depth", "confidence"):
            cli_array = np.load(cli_out / kind / f"{cli_record['name']}.npy")
            np.testing.assert_array_equal(np.load(node_out / kind / f"{node_record['name']}.npy"), cli_array)
    assert (node_out / "trajectory.txt").read_text() == (cli_out / "trajectory.txt").read_text()
