"""`OutputFolder`: the sink that writes a run into a folder, as it goes, and resumes an interrupted one.

Written per frame, as frames come: `depth/<name>.png|.npy`, `confidence/<name>.npy`, one line of
`frames.jsonl` (name, source file, stamp_ns, stamp, keyframe) and one of `trajectory.txt` (TUM, the
exact integer-nanosecond stamp). Written at the end of the run, also when it was interrupted:
`map.ply`, `intrinsics.json`, `map_preview.png`, `depth_preview.png` and `summary.json` (frames,
skipped inputs with their reasons, interrupted, timings, the metric scale, settings).
With a metric scale (`RunnerOptions.scale`) each frame is written at the estimate known when it came
(model units before one is known); at the end (and at a time-jump reset, for the frames before it) the
frames since the last reset are brought to the last estimate: `trajectory.txt` exactly, depth files
when they are more than `DEPTH_RESCALE_TOLERANCE` off it, so the whole folder is in one unit.
An interrupted run also leaves `resume/` (the runner's state and this folder's, see `fin3r_lib.run_state`) from which
`OutputFolder(..., resume=True).restore(runner)` continues; a run that completes removes it.
`run.json` holds the settings, so a folder is never mixed with another run's.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fin3r_lib.data.frame import Frame
from fin3r_lib.errors import Fin3rError
from fin3r_lib.outputs import (
    TUM_HEADER,
    format_stamp_ns,
    tum_line,
    write_confidence,
    write_depth,
    write_intrinsics,
    write_ply,
    write_previews,
)
from fin3r_lib.run_state import clear_state, has_state, load_state, save_state

if TYPE_CHECKING:
    from fin3r_lib.runner import Runner, RunSummary
    from fin3r_lib.session import SessionResult

RUN_FILE = "run.json"
FRAMES_FILE = "frames.jsonl"
TRAJECTORY_FILE = "trajectory.txt"
RESUME_DIR = "resume"
#: relative scale difference above which an already written depth frame is rewritten at the final scale
DEPTH_RESCALE_TOLERANCE = 1e-4


class OutputFolderError(Fin3rError):
    """An output folder cannot be used: not creatable, not writable, another run's, nothing to resume."""


def _json(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples become lists), for comparing settings."""
    return json.loads(json.dumps(value))


def _settings_difference(old: dict, new: dict) -> str:
    keys = sorted(set(old) | set(new))
    diffs = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
    return "; ".join(diffs)


def check_output_folder(out: str | Path, resume: bool, settings: dict | None = None) -> None:
    """Fail with one line (OutputFolderError) when `out` cannot take this run; run it before loading the model.

    `out` must be creatable and writable; without `resume` it must be empty or absent, with `resume`
    it must hold an interrupted run's state written with the same `settings`.
    """
    out = Path(out)
    for parent in [out, *out.parents]:
        if parent.exists():
            if not parent.is_dir():
                where = "is a file" if parent == out else f"lies under {parent}, which is a file"
                raise OutputFolderError(f"--out {out}: expected a folder, but it {where}")
            break
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".fin3r-write-check-"):
            pass
    except OSError as exc:
        raise OutputFolderError(f"--out {out}: cannot write there ({exc.strerror or exc})") from exc
    entries = [p.name for p in out.iterdir()]
    run_file = out / RUN_FILE
    if not resume:
        if not entries:
            return
        what = "another run's outputs" if run_file.is_file() else f"{len(entries)} other files"
        raise OutputFolderError(
            f"--out {out}: expected an empty or new folder, it holds {what}; choose another folder"
            + (" or --resume an interrupted run" if run_file.is_file() else "")
        )
    if not run_file.is_file():
        raise OutputFolderError(f"--out {out}: nothing to resume (no {RUN_FILE} of an earlier run)")
    if not has_state(out / RESUME_DIR):
        raise OutputFolderError(f"--out {out}: nothing to resume (the run there completed or left no resume state)")
    if settings is not None:
        old = json.loads(run_file.read_text())["settings"]
        if old != _json(settings):
            raise OutputFolderError(
                f"--out {out}: the run there had other settings ({_settings_difference(old, _json(settings))}); "
                "resume with the same options"
            )


class OutputFolder:
    """The sink writing a run into `out`; see the module docstring. `settings` (JSON) describe the run."""

    def __init__(self, out: str | Path, settings: dict, resume: bool = False) -> None:
        self.out = Path(out)
        self.settings = _json(settings)
        self._names: list[str] = []
        self._keyframes: list[bool] = []
        self._poses: list[np.ndarray] = []
        self._intrinsics: list[np.ndarray] = []
        self._scales: list[float] = []  # metres per session unit each frame was written with (1.0: model units)
        self._epoch_start = 0  # first frame since the session's last reset
        self._size: tuple[int, int] = (0, 0)
        self._resume_doc: dict | None = None
        self._resume_arrays: dict[str, np.ndarray] = {}
        if resume:
            self._load_resume_state()
        else:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / RUN_FILE).write_text(json.dumps({"settings": self.settings}, indent=1) + "\n")
            (self.out / FRAMES_FILE).write_text("")
            (self.out / TRAJECTORY_FILE).write_text(TUM_HEADER + "\n")
        self._taken = set(self._names)

    def _load_resume_state(self) -> None:
        arrays, doc = load_state(self.out / RESUME_DIR)
        folder = doc["output"]
        self._names = list(folder["names"])
        self._keyframes = list(folder["keyframes"])
        self._size = tuple(folder["size"])  # type: ignore[assignment]
        self._poses = list(arrays["output.poses"].reshape(-1, 4, 4))
        self._intrinsics = list(arrays["output.intrinsics"].reshape(-1, 3, 3))
        self._scales = [float(v) for v in arrays["output.scales"]]
        self._epoch_start = int(folder["epoch_start"])
        lines = (self.out / FRAMES_FILE).read_text().splitlines()
        if len(lines) != len(self._names):
            raise OutputFolderError(
                f"{self.out / FRAMES_FILE}: expected {len(self._names)} records as at the interruption, "
                f"found {len(lines)}; the folder changed since"
            )
        self._resume_arrays = {k: v for k, v in arrays.items() if not k.startswith("output.")}
        self._resume_doc = doc["runner"]

    def restore(self, runner: Runner) -> None:
        """Put `runner` back where the interrupted run stopped (only for a folder opened with `resume=True`)."""
        if self._resume_doc is None:
            raise OutputFolderError(f"{self.out}: restore() needs a folder opened with resume=True")
        runner.load_state_dict(self._resume_arrays, self._resume_doc)

    @property
    def names(self) -> list[str]:
        """Names of the frames written so far (file stems under depth/ and confidence/)."""
        return list(self._names)

    def on_frame(self, frame: Frame, result: SessionResult) -> None:
        """Write the frame's depth and confidence, its record and its trajectory line."""
        name = f"{frame.index:06d}"
        if name in self._taken:
            raise OutputFolderError(f"{self.out}: two output frames named {name} (frame index repeated)")
        if result.was_reset:
            self._rescale_epoch()
            self._epoch_start = len(self._names)
        f = result.frame
        write_depth(self.out / "depth", name, f.depth)
        write_confidence(self.out / "confidence", name, f.depth_conf)
        stamp_ns = frame.stamp_ns if frame.stamp_ns is not None else round(frame.stamp * 1e9)
        record = {
            "name": name,
            "source": frame.source,
            "index": frame.index,
            "stamp_ns": int(stamp_ns),
            "stamp": frame.stamp,
            "keyframe": bool(result.is_keyframe),
        }
        with (self.out / FRAMES_FILE).open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        with (self.out / TRAJECTORY_FILE).open("a") as fh:
            fh.write(tum_line(format_stamp_ns(stamp_ns), f.cam_to_world) + "\n")
        self._names.append(name)
        self._taken.add(name)
        self._keyframes.append(bool(result.is_keyframe))
        self._poses.append(np.array(f.cam_to_world, dtype=np.float64))
        self._intrinsics.append(np.array(f.intrinsics, dtype=np.float64))
        self._scales.append(1.0 if result.metric_scale is None else float(result.metric_scale))
        self._size = f.size

    def _rescale_epoch(self) -> int:
        """Bring the frames since the last reset to the scale the latest of them was written with; returns
        how many depth files were rewritten."""
        frames = range(self._epoch_start, len(self._names))
        if not frames:
            return 0
        target = self._scales[-1]
        changed = [i for i in frames if self._scales[i] != target]
        rewritten = 0
        for i in changed:
            ratio = target / self._scales[i]
            self._poses[i][:3, 3] *= ratio
            if abs(ratio - 1.0) > DEPTH_RESCALE_TOLERANCE:
                depth_dir = self.out / "depth"
                write_depth(depth_dir, self._names[i], np.load(depth_dir / f"{self._names[i]}.npy") * ratio)
                rewritten += 1
            self._scales[i] = target
        if changed:
            lines = (self.out / TRAJECTORY_FILE).read_text().splitlines()[1:]
            rows = [tum_line(line.split()[0], pose) for line, pose in zip(lines, self._poses, strict=True)]
            _write_text(self.out / TRAJECTORY_FILE, "\n".join([TUM_HEADER, *rows]) + "\n")
        return rewritten

    def on_skip(self, source: str, reason: str) -> None:
        """Nothing to write now: `summary.json` lists every skipped input (the runner keeps them)."""

    def on_finish(self, runner: Runner, summary: RunSummary) -> None:
        """Write the map, intrinsics, previews and summary; keep a resume state when interrupted."""
        self._rescale_epoch()
        points, colors = runner.map_cloud()
        write_ply(self.out / "map.ply", points, colors)
        if self._names:
            write_intrinsics(self.out / "intrinsics.json", np.stack(self._intrinsics), self._size, self._names)
            shown = np.linspace(0, len(self._names) - 1, min(4, len(self._names))).round().astype(int)
            depths = [(self._names[i], np.load(self.out / "depth" / f"{self._names[i]}.npy")) for i in shown]
            write_previews(self.out, points, colors, depths, np.stack(self._poses))
        doc = {
            **summary.to_json(),
            "keyframes": int(sum(self._keyframes)),
            "map_points": len(points),
            "settings": self.settings,
        }
        _write_json(self.out / "summary.json", doc)
        if summary.interrupted:
            arrays, runner_doc = runner.state_dict()
            arrays["output.poses"] = np.array(self._poses, np.float64).reshape(-1, 4, 4)
            arrays["output.intrinsics"] = np.array(self._intrinsics, np.float64).reshape(-1, 3, 3)
            arrays["output.scales"] = np.array(self._scales, np.float64)
            output = {
                "names": self._names,
                "keyframes": self._keyframes,
                "size": list(self._size),
                "epoch_start": self._epoch_start,
            }
            save_state(self.out / RESUME_DIR, arrays, {"runner": runner_doc, "output": output})
        else:
            clear_state(self.out / RESUME_DIR)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_json(path: Path, doc: dict) -> None:
    _write_text(path, json.dumps(doc, indent=1, allow_nan=False) + "\n")
