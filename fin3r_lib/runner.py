"""`Runner`: the one loop over a sequence, shared by the node, `fin3r reconstruct`, the demo and evaluation.

Frames come in from any source (folders, videos, datasets, bags, ROS messages), each is prepared
the same way (`RunnerOptions.input_max_side`), goes through the one `ReconstructionSession`, and its
result goes to every `Sink` (ROS publishers, an output folder, an evaluator). A frame the session
cannot use (a `Fin3rError` of that frame: not placed, bad input, non-finite output) and an input item
a source could not decode (`SkippedFrame`) are both skipped, counted and reported to the sinks with
their reason; the run goes on.

Metric scale (`RunnerOptions.scale`, see `fin3r_lib.session.scale`): the runner feeds its estimator
with each frame's known odometry pose (`Frame.cam_to_world`, at keyframes) or aligned sensor depth
(`Frame.depth`); once the estimate is known, every result handed to the sinks (and `map_cloud`) is
in metres. Without a scale source results are the session's, untouched.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

from fin3r_lib.data.frame import Frame, SkippedFrame
from fin3r_lib.errors import Fin3rError
from fin3r_lib.geometry import resize_nearest
from fin3r_lib.models.base import ReconstructionModel
from fin3r_lib.models.grid import GridMapping
from fin3r_lib.models.reconstruction import Reconstruction
from fin3r_lib.runner_options import RunnerOptions
from fin3r_lib.session import ReconstructionSession, SessionResult
from fin3r_lib.session.scale import ScaleEstimate, ScaleEstimator, scaled_frame


class Sink(Protocol):
    """Where results go: ROS publishers, an output folder, an evaluator."""

    def on_frame(self, frame: Frame, result: SessionResult) -> None:
        """A frame was reconstructed (`frame` as prepared: the grid `result` is on)."""
        ...

    def on_skip(self, source: str, reason: str) -> None:
        """A frame was skipped (and counted); `source` names it, `reason` says why."""
        ...

    def on_finish(self, runner: Runner, summary: RunSummary) -> None:
        """The run ended (completely, or interrupted when `summary.interrupted`)."""
        ...


@dataclass
class RunSummary:
    """What a run did: frames reconstructed, what was skipped and why, resets, timings."""

    frames: int
    skipped: list[dict[str, str]]  # [{"source": ..., "reason": ...}] in the order they were skipped
    resets: int
    interrupted: bool
    model_s: float  # model time summed over the reconstructed frames
    wall_s: float
    #: the metric scale at the end: source, scale (metres per session unit, None: model units), spread, samples, status
    scale: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """A JSON-serialisable dict (summary.json)."""
        doc = dataclasses.asdict(self)
        doc["model_s_per_frame"] = self.model_s / self.frames if self.frames else None
        return doc


def skip_reason(exc: BaseException) -> str:
    """How a frame's error is reported: "<ErrorClass>: <message>" (`error_kind` reads the class back)."""
    return f"{type(exc).__name__}: {exc}"


def error_kind(reason: str) -> str:
    """The error class a `skip_reason` names."""
    return reason.partition(":")[0]


def frame_source(frame: Frame) -> str:
    """How a frame is named in skip reports: its `source`, else its index and stamp."""
    if frame.source:
        return frame.source
    stamp = f"{frame.stamp_ns} ns" if frame.stamp_ns is not None else f"{frame.stamp:.9f} s"
    return f"frame {frame.index} at {stamp}"


def resize_frame(frame: Frame, max_side: int) -> Frame:
    """`frame` downscaled so that max(H, W) <= `max_side` (0 or already small: unchanged); K and depth follow."""
    height, width = frame.size
    if max_side <= 0 or max(height, width) <= max_side:
        return frame
    scale = max_side / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    rgb = cv2.resize(frame.rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    changes: dict[str, object] = {"rgb": rgb}
    if frame.intrinsics is not None:
        mapping = GridMapping(input_size=(height, width), resized_size=size, model_size=size)
        changes["intrinsics"] = mapping.intrinsics_to_model(np.asarray(frame.intrinsics, dtype=np.float64))
    if frame.depth is not None:
        changes["depth"] = resize_nearest(frame.depth, size)
    return dataclasses.replace(frame, **changes)


def scaled_result(result: SessionResult, scale: float) -> SessionResult:
    """`result` in metres: geometry and cloud multiplied by `scale` (metres per session unit)."""
    points = (result.points * scale).astype(result.points.dtype)
    return dataclasses.replace(result, frame=scaled_frame(result.frame, scale), points=points, metric_scale=scale)


class Runner:
    """Frames -> the session -> sinks; see the module docstring."""

    def __init__(
        self, model: ReconstructionModel, options: RunnerOptions | None = None, sinks: Sequence[Sink] = ()
    ) -> None:
        self.model = model
        self.options = options or RunnerOptions()
        self.session = ReconstructionSession(model, self.options.session)
        self.scale = ScaleEstimator(self.options.scale)
        self._sinks: list[Sink] = list(sinks)
        self.items = 0  # input items processed (reconstructed or skipped)
        self.taken = 0  # frames given to the session (reconstructed or rejected by it)
        self.frames = 0
        self.skipped: list[dict[str, str]] = []
        self.resets = 0
        #: frames that had no sample for the scale source (odometry: keyframes without a pose; depth: no depth)
        self.scale_missing = 0
        self.model_s = 0.0
        self._started = time.perf_counter()

    def add_sink(self, sink: Sink) -> None:
        """Send every later result to `sink` too."""
        self._sinks.append(sink)

    def prepare(self, frame: Frame) -> Frame:
        """The frame as the session sees it (input_max_side applied); `frame` itself is not changed."""
        return resize_frame(frame, self.options.input_max_side)

    def process(self, frame: Frame | SkippedFrame) -> SessionResult | None:
        """Reconstruct one frame and hand it to every sink; a frame's own error skips it (None, counted)."""
        self.items += 1
        if isinstance(frame, SkippedFrame):
            self._skip(frame.source, frame.reason)
            return None
        self.taken += 1
        try:
            prepared = self.prepare(frame)
            result = self.session.process(prepared)
        except Fin3rError as exc:
            self._skip(frame_source(frame), skip_reason(exc))
            return None
        self.frames += 1
        self.resets += result.was_reset
        self.model_s += result.timings["model_s"]
        result = self._metric(prepared, result)
        for sink in self._sinks:
            sink.on_frame(prepared, result)
        return result

    @property
    def scale_estimate(self) -> ScaleEstimate:
        """The current metric scale (None: results are in the session's units)."""
        return self.scale.estimate

    def map_cloud(self) -> tuple[np.ndarray, np.ndarray]:
        """The session's map, in metres once the scale is known: (N, 3) float32 points, (N, 3) uint8 colours."""
        points, colors = self.session.map_cloud()
        scale = self.scale.estimate.scale
        return (points if scale is None else (points * scale).astype(np.float32)), colors

    def _metric(self, frame: Frame, result: SessionResult) -> SessionResult:
        """Feed the frame's scale sample (a session reset restarts the estimate) and scale `result` when known."""
        source = self.scale.config.source
        if result.was_reset:
            self.scale.reset()
        if source == "odometry" and result.is_keyframe:
            if frame.cam_to_world is None:
                self.scale_missing += 1
            else:
                self.scale.add_positions(result.frame.cam_to_world[:3, 3], np.asarray(frame.cam_to_world)[:3, 3])
        elif source == "depth":
            if frame.depth is None:
                self.scale_missing += 1
            else:
                self.scale.add_depth(result.frame.depth, frame.depth)
        scale = self.scale.estimate.scale
        return result if scale is None else scaled_result(result, scale)

    def run(
        self,
        frames: Iterable[Frame | SkippedFrame],
        stop: Callable[[], bool] | None = None,
        max_frames: int | None = None,
    ) -> RunSummary:
        """Process `frames` until they end, `stop()` is true (checked between frames) or `max_frames` were taken.

        `max_frames` bounds `taken`: the frames given to the session (reconstructed or rejected by it)
        since the runner started, those before an interruption included for a restored runner; items a
        source could not decode do not count. The sinks always get `on_finish`: interrupted when
        `stop()` ended the run or an exception escaped (then re-raised).
        """
        iterator = iter(frames)
        interrupted = False
        try:
            while max_frames is None or self.taken < max_frames:
                if stop is not None and stop():
                    interrupted = True
                    break
                item = next(iterator, None)
                if item is None:
                    break
                self.process(item)
        except BaseException:
            self.finish(interrupted=True)
            raise
        return self.finish(interrupted)

    def summary(self, interrupted: bool = False) -> RunSummary:
        """The counts so far."""
        return RunSummary(
            frames=self.frames,
            skipped=[dict(s) for s in self.skipped],
            resets=self.resets,
            interrupted=interrupted,
            model_s=self.model_s,
            wall_s=time.perf_counter() - self._started,
            scale={
                "source": self.scale.config.source,
                **dataclasses.asdict(self.scale.estimate),
                "frames_without_sample": self.scale_missing,
            },
        )

    def finish(self, interrupted: bool = False) -> RunSummary:
        """Tell every sink the run ended; returns the summary they were given."""
        summary = self.summary(interrupted)
        for sink in self._sinks:
            sink.on_finish(self, summary)
        return summary

    def reset(self) -> None:
        """Forget every frame: the next one starts a new world (counted as a reset)."""
        self.session.reset()
        self.scale.reset()
        self.resets += 1

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict]:
        """(arrays, JSON document) of everything needed to continue this run: session and scale state, counts."""
        arrays = {f"session.{k}": v for k, v in self.session.state_dict().items()}
        scale_arrays, scale_doc = self.scale.state_dict()
        arrays.update({f"scale.{k}": v for k, v in scale_arrays.items()})
        doc = {
            "scale": scale_doc,
            "items": self.items,
            "taken": self.taken,
            "frames": self.frames,
            "skipped": [dict(s) for s in self.skipped],
            "resets": self.resets,
            "scale_missing": self.scale_missing,
            "model_s": self.model_s,
            "wall_s": time.perf_counter() - self._started,
        }
        return arrays, doc

    def load_state_dict(self, arrays: dict[str, np.ndarray], doc: dict) -> None:
        """Continue from a `state_dict` (same model and options): the next frame goes on where it stopped."""
        self.session.load_state_dict({k[8:]: v for k, v in arrays.items() if k.startswith("session.")})
        self.scale.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("scale.")}, doc["scale"])
        self.items, self.taken = int(doc["items"]), int(doc["taken"])
        self.frames, self.resets = int(doc["frames"]), int(doc["resets"])
        self.scale_missing = int(doc["scale_missing"])
        self.skipped = [{"source": str(s["source"]), "reason": str(s["reason"])} for s in doc["skipped"]]
        self.model_s = float(doc["model_s"])
        self._started = time.perf_counter() - float(doc["wall_s"])

    def predict(self, frames: list[Frame]) -> Reconstruction:
        """Model-level reconstruction of `frames` jointly, prepared like the session's frames (evaluation)."""
        return self.model.predict([self.prepare(f).rgb for f in frames])

    def _skip(self, source: str, reason: str) -> None:
        self.skipped.append({"source": source, "reason": reason})
        for sink in self._sinks:
            sink.on_skip(source, reason)
