"""The output folder: checked before the model loads, written as frames come, resumed bit-exactly."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import pytest

from fin3r_lib.cli.main import main
from fin3r_lib.data.frame import Frame
from fin3r_lib.data.sources import open_frames
from fin3r_lib.output_folder import OutputFolder, OutputFolderError, check_output_folder
from fin3r_lib.outputs import format_stamp_ns
from fin3r_lib.runner import Runner, RunnerOptions
from fin3r_lib.session import SessionConfig

REPO = Path(__file__).resolve().parents[1]
TINY = SessionConfig(keyframe_min_flow_px=0.0, context_size=2, min_confidence=0.0, confidence_top_fraction=1.0)
RESULT_FILES = ("frames.jsonl", "trajectory.txt", "map.ply", "intrinsics.json")


@pytest.fixture(scope="module")
def tiny_vggt():
    from fin3r_ros.demo import random_model  # seeded random weights with finite focal lengths

    return random_model("vggt-tiny")


def test_check_output_folder_fails_with_one_line_before_anything_runs(tmp_path) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("x")
    with pytest.raises(OutputFolderError, match=r"notes.txt/out: expected a folder, but it lies under .*notes.txt"):
        check_output_folder(file / "out", resume=False)
    with pytest.raises(OutputFolderError, match="expected a folder, but it is a file"):
        check_output_folder(file, resume=False)
    with pytest.raises(OutputFolderError, match="cannot write there"):
        check_output_folder(Path("/sys/fin3r-out"), resume=False)  # sysfs refuses new folders, even to root
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.txt").write_text("x")
    with pytest.raises(OutputFolderError, match=r"it holds 1 other files; choose another folder$"):
        check_output_folder(other, resume=False)
    with pytest.raises(OutputFolderError, match="nothing to resume"):
        check_output_folder(other, resume=True)
    check_output_folder(tmp_path / "new" / "deeper", resume=False)  # created, left empty
    assert list((tmp_path / "new" / "deeper").iterdir()) == []


def test_cli_checks_the_output_before_loading_the_model(tmp_path, capsys, seven_scenes_dir) -> None:
    file = tmp_path / "f"
    file.write_text("x")
    # an unknown model would fail at loading: the output's error comes first, so nothing was loaded
    argv = ["reconstruct", str(seven_scenes_dir), "--out", str(file / "o"), "--model", "no-such-model"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected a folder, but it lies under" in err and "Traceback" not in err


def _frames(seven_scenes: dict, n: int) -> list[Frame]:
    return [
        Frame(seven_scenes["rgb"][i], stamp=1491682360.314066469 + i / 30, index=i,
              stamp_ns=1491682360314066469 + i * 33_333_333, source=f"/data/frame-{i:06d}.color.png")
        for i in range(n)
    ]  # fmt: skip


def _run(model, out: Path, frames: list[Frame], stop_after: int | None = None, resume: bool = False) -> Runner:
    folder = OutputFolder(out, {"test": 1}, resume=resume)
    runner = Runner(model, RunnerOptions(input_max_side=96, session=TINY), [folder])
    if resume:
        folder.restore(runner)
    stop = None if stop_after is None else (lambda: runner.frames >= stop_after)
    runner.run(islice(frames, runner.items, None), stop=stop)
    return runner


def _same_results(a: Path, b: Path) -> None:
    for name in RESULT_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    names = sorted(p.name for p in (a / "depth").iterdir())
    assert names == sorted(p.name for p in (b / "depth").iterdir())
    for sub in ("depth", "confidence"):
        for p in (a / sub).iterdir():
            assert p.read_bytes() == (b / sub / p.name).read_bytes(), p
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    for key in ("frames", "skipped", "resets", "keyframes", "map_points", "interrupted"):
        assert sa[key] == sb[key], key


def test_interrupted_then_resumed_run_equals_the_uninterrupted_run(tiny_vggt, seven_scenes, tmp_path) -> None:
    frames = _frames(seven_scenes, 4)
    whole = tmp_path / "whole"
    _run(tiny_vggt, whole, frames)
    records = [json.loads(line) for line in (whole / "frames.jsonl").read_text().splitlines()]
    assert [r["source"] for r in records] == [f.source for f in frames]
    assert [r["stamp_ns"] for r in records] == [f.stamp_ns for f in frames]
    stamps = [line.split()[0] for line in (whole / "trajectory.txt").read_text().splitlines()[1:]]
    assert stamps[0] == "1491682360.314066469" and stamps == [format_stamp_ns(f.stamp_ns) for f in frames]
    assert not (whole / "resume").exists()

    part = tmp_path / "part"
    _run(tiny_vggt, part, frames, stop_after=2)
    summary = json.loads((part / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["frames"] == 2
    assert len((part / "trajectory.txt").read_text().splitlines()) == 3 and (part / "map.ply").is_file()
    assert (part / "resume" / "state.npz").is_file()
    with pytest.raises(OutputFolderError, match="holds another run's outputs; choose another folder or --resume"):
        check_output_folder(part, resume=False)
    check_output_folder(part, resume=True, settings={"test": 1})
    with pytest.raises(OutputFolderError, match=r"other settings \(test: 1 -> 2\)"):
        check_output_folder(part, resume=True, settings={"test": 2})

    _run(tiny_vggt, part, frames, resume=True)
    _same_results(part, whole)
    assert json.loads((part / "summary.json").read_text())["interrupted"] is False
    assert not (part / "resume").exists()
    with pytest.raises(OutputFolderError, match="nothing to resume"):
        check_output_folder(part, resume=True)


def test_cut3r_stream_state_round_trip_continues_bit_exactly(seven_scenes) -> None:
    import torch

    from fin3r_lib.models import build_model

    torch.manual_seed(0)
    model = build_model("cut3r-tiny")
    images = [cv2.resize(img, (96, 72), interpolation=cv2.INTER_AREA) for img in seven_scenes["rgb"][:3]]
    whole = model.new_stream()
    expected = [whole.step(img) for img in images]
    first = model.new_stream()
    first.step(images[0])
    first.step(images[1])
    saved = {k: np.array(v) for k, v in first.state_dict().items()}
    assert saved["tokens"].dtype == np.float32 and int(saved["frames"]) == 2
    second = model.new_stream()
    second.load_state_dict(saved)
    got = second.step(images[2])
    np.testing.assert_array_equal(got.depth, expected[2].depth)
    np.testing.assert_array_equal(got.cam_to_world, expected[2].cam_to_world)
    with pytest.raises(ValueError, match="CUT3R stream state: expected tokens"):
        second.load_state_dict({**saved, "tokens": saved["tokens"][:, :1]})


def _loader_script() -> str:
    # until the model builder seeds VGGT's camera head, --checkpoint none runs the demo's seeded random weights
    return (
        "import sys; import fin3r_lib.cli.reconstruct_run as r; from fin3r_ros.demo import random_model; "
        "r._load_model = lambda a: random_model(a.model); from fin3r_lib.cli.main import main; "
        "sys.exit(main(sys.argv[1:]))"
    )


@pytest.mark.slow
def test_sigint_to_a_running_reconstruct_writes_everything_and_resume_finishes(
    tiny_vggt, seven_scenes_dir, tmp_path, monkeypatch
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for src in sorted(seven_scenes_dir.glob("frame-*.color.png"))[:16]:
        shutil.copy(src, folder / src.name)
    options = ["--model", "vggt-tiny", "--checkpoint", "none", "--device", "cpu", "--quiet", "--input-max-side", "96",
               "--keyframe-min-flow-px", "0", "--context-size", "3", "--min-confidence", "0"]  # fmt: skip
    out = tmp_path / "out"
    argv = [sys.executable, "-c", _loader_script(), "reconstruct", str(folder), "--out", str(out), *options]
    proc = subprocess.Popen(argv, cwd=REPO, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        lines = (out / "frames.jsonl").read_text().splitlines() if (out / "frames.jsonl").is_file() else []
        if lines:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "finishing the current frame" in err and "--resume` continues" in err and "Traceback" not in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and 1 <= summary["frames"] < 16
    for name in RESULT_FILES:
        assert (out / name).is_file(), name
    n = summary["frames"]
    assert (
        len((out / "frames.jsonl").read_text().splitlines())
        == n
        == len(json.loads((out / "intrinsics.json").read_text())["frames"])
    )

    import fin3r_lib.cli.reconstruct_run as reconstruct

    monkeypatch.setattr(reconstruct, "_load_model", lambda args: tiny_vggt)
    assert main(["reconstruct", str(folder), "--out", str(out), *options, "--resume"]) == 0
    whole = tmp_path / "whole"
    assert main(["reconstruct", str(folder), "--out", str(whole), *options]) == 0
    # another process may sum in another order (threads): equal up to float rounding; bit-exact in-process above
    assert (out / "frames.jsonl").read_text() == (whole / "frames.jsonl").read_text()
    ta, tb = (np.loadtxt(d / "trajectory.txt") for d in (out, whole))
    assert ta.shape == tb.shape == (16, 8)
    np.testing.assert_array_equal(ta[:, 0], tb[:, 0])
    np.testing.assert_allclose(ta[:, 1:], tb[:, 1:], atol=1e-5)
    for p in (whole / "depth").glob("*.npy"):
        np.testing.assert_allclose(np.load(out / "depth" / p.name), np.load(p), rtol=1e-4)
    assert json.loads((out / "summary.json").read_text())["frames"] == 16


@pytest.mark.slow
def test_a_second_sigint_exits_at_once(seven_scenes_dir, tmp_path) -> None:
    out = tmp_path / "out"
    argv = [sys.executable, "-c", _loader_script(), "reconstruct", str(seven_scenes_dir), "--out", str(out),
            "--model", "vggt-tiny", "--checkpoint", "none", "--device", "cpu", "--quiet",
            "--pattern", "*.color.png"]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=REPO, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "frames.jsonl").is_file() and (out / "frames.jsonl").read_text():
            break  # a frame written: the handlers are in place
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    # the second signal goes as soon as the handler has said it is finishing (two signals before the handler
    # ran would be one; after a fixed pause, a fast machine had already finished and exited)
    first = ""
    for line in iter(proc.stderr.readline, ""):  # until the handler's line (or the end of stderr)
        first += line
        if "SIGINT: finishing the current frame" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    err = first + rest
    assert "SIGINT: finishing the current frame" in first, err
    assert proc.returncode == 130 and "second interrupt, exiting now" in err, err


def test_folder_skips_unreadable_and_depth_images_and_the_run_finishes(tiny_vggt, seven_scenes_dir, tmp_path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    colour = sorted(seven_scenes_dir.glob("frame-*.color.png"))[:3]
    for src in colour:
        shutil.copy(src, folder / src.name)
        shutil.copy(src.with_name(src.name.replace(".color.", ".depth.")), folder)  # 16-bit depth beside it
    (folder / "frame-000150b.color.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")  # unreadable, between frames
    bgr = cv2.imread(str(colour[0]))
    cv2.imwrite(str(folder / "z-colour.ppm"), bgr)
    cv2.imwrite(str(folder / "z-depth.pgm"), cv2.imread(str(colour[0]).replace(".color.", ".depth."), -1))
    items = list(open_frames(folder))
    frames = [f for f in items if isinstance(f, Frame)]
    assert [Path(f.source).name for f in frames] == [*(c.name for c in colour), "z-colour.ppm"]
    np.testing.assert_array_equal(frames[-1].rgb, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    assert [f.index for f in frames] == [0, 1, 2, 3] and frames[1].stamp == pytest.approx(1 / 30)
    skipped = {Path(s.source).name: s.reason for s in items if not isinstance(s, Frame)}
    assert sorted(skipped) == sorted([*(c.name.replace(".color.", ".depth.") for c in colour),
                                      "frame-000150b.color.png", "z-depth.pgm"])  # fmt: skip
    assert "OpenCV could not decode it" in skipped["frame-000150b.color.png"]
    assert "single-channel image (a depth map?)" in skipped["z-depth.pgm"]

    out = tmp_path / "out"
    runner = Runner(tiny_vggt, RunnerOptions(input_max_side=96, session=TINY), [OutputFolder(out, {})])
    summary = runner.run(open_frames(folder))
    assert summary.frames == 4 and not summary.interrupted
    doc = json.loads((out / "summary.json").read_text())
    assert sorted(Path(s["source"]).name for s in doc["skipped"]) == sorted(skipped)
    assert all(s["reason"] == skipped[Path(s["source"]).name] for s in doc["skipped"])
    records = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    assert [r["source"] for r in records] == [f.source for f in frames]
    intrinsics = (out / "intrinsics.json").read_text()
    assert "Infinity" not in intrinsics and "NaN" not in intrinsics
