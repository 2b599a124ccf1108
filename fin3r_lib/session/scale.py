"""Metric scale of a session (metres per model unit) from odometry or an aligned depth sensor.

- `odometry`: the session's keyframe camera positions and the robot's odometry camera positions at
  the same stamps, over a sliding window; every pair of samples whose odometry distance is at least
  `min_pair_m` gives a ratio odometry distance / model distance (rotation- and origin-free), the worst
  `trim` fraction on each side is dropped and the median is the scale. Until the window spans
  `min_baseline_m` the scale stays unknown and `status` says so.
- `depth`: per frame, the median of sensor depth / predicted depth over pixels valid in both; the
  scale is the median of the last `window` per-frame ratios.
`spread` is the relative median absolute deviation of the ratios used (0 = all agree).
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, replace

import numpy as np

from fin3r_lib.errors import InputError
from fin3r_lib.models.reconstruction import FrameResult

SCALE_SOURCES = ("none", "odometry", "depth")


@dataclass
class ScaleConfig:
    """Settings of the scale estimate."""

    source: str = "none"  # none | odometry | depth
    window: int = 30  # samples kept (keyframes for odometry, frames for depth)
    min_baseline_m: float = 0.3  # odometry: the window must span this far before a scale is given
    min_pair_m: float = 0.05  # odometry: pairs of samples closer than this are not used
    trim: float = 0.2  # fraction of lowest and of highest ratios dropped
    min_valid_pixels: int = 500  # depth: fewer valid pixels in a frame -> the frame gives no ratio
    max_depth_m: float = 10.0  # depth: sensor readings beyond this are ignored

    def __post_init__(self) -> None:
        if self.source not in SCALE_SOURCES:
            raise InputError(f"scale_source: expected one of {SCALE_SOURCES}, got {self.source!r}")
        for name in ("window", "min_valid_pixels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"scale {name}: expected an integer >= 1, got {value!r}")
        for name in ("min_baseline_m", "min_pair_m", "max_depth_m"):
            if not getattr(self, name) > 0:
                raise InputError(f"scale {name}: expected a number > 0, got {getattr(self, name)!r}")
        if not 0 <= self.trim < 0.5:
            raise InputError(f"scale trim: expected a number in [0, 0.5), got {self.trim!r}")


@dataclass(frozen=True)
class ScaleEstimate:
    """The current estimate: `scale` None means unknown (output stays in model units)."""

    scale: float | None
    spread: float
    samples: int
    status: str


def _robust(ratios: np.ndarray, trim: float) -> tuple[float, float]:
    """(median, relative MAD) of `ratios` after dropping `trim` of each tail."""
    r = np.sort(ratios)
    k = int(len(r) * trim)
    r = r[k : len(r) - k] if len(r) - 2 * k > 0 else r
    med = float(np.median(r))
    return med, float(np.median(np.abs(r - med)) / med)


class ScaleEstimator:
    """Feeds samples of the configured source and keeps the current `estimate`."""

    def __init__(self, config: ScaleConfig | None = None) -> None:
        self.config = config or ScaleConfig()
        self._model: deque[np.ndarray] = deque(maxlen=self.config.window)
        self._odom: deque[np.ndarray] = deque(maxlen=self.config.window)
        self._ratios: deque[float] = deque(maxlen=self.config.window)
        self.estimate = self._initial()

    def _initial(self) -> ScaleEstimate:
        if self.config.source == "none":
            return ScaleEstimate(None, 0.0, 0, "scale source 'none': model units")
        return ScaleEstimate(None, 0.0, 0, f"scale source {self.config.source!r}: no samples yet")

    def reset(self) -> None:
        """Forget every sample (a new session has a new scale)."""
        for samples in (self._model, self._odom, self._ratios):
            samples.clear()
        self.estimate = self._initial()

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict]:
        """(arrays, JSON document): the samples and the estimate (part of a run's resume state)."""
        arrays = {
            "model": np.array(self._model, np.float64).reshape(-1, 3),
            "odom": np.array(self._odom, np.float64).reshape(-1, 3),
            "ratios": np.array(self._ratios, np.float64),
        }
        return arrays, asdict(self.estimate)

    def load_state_dict(self, arrays: dict[str, np.ndarray], doc: dict) -> None:
        """Continue from a `state_dict` of an estimator with the same config (InputError when it does not fit)."""
        model, odom, ratios = (np.asarray(arrays[k], np.float64) for k in ("model", "odom", "ratios"))
        if model.shape != odom.shape or model.ndim != 2 or model.shape[1] != 3 or ratios.ndim != 1:
            raise InputError(
                f"scale state: expected (N, 3) model and odometry positions and (M,) ratios, "
                f"got {model.shape}, {odom.shape}, {ratios.shape}"
            )
        if max(len(model), len(ratios)) > self.config.window:
            raise InputError(f"scale state: expected at most window={self.config.window} samples, got more")
        self.reset()
        self._model.extend(model)
        self._odom.extend(odom)
        self._ratios.extend(ratios.tolist())
        scale = doc["scale"]
        self.estimate = ScaleEstimate(
            None if scale is None else float(scale), float(doc["spread"]), int(doc["samples"]), str(doc["status"])
        )

    def add_positions(self, model_position: np.ndarray, odom_position: np.ndarray) -> ScaleEstimate:
        """One keyframe: its camera position in the session and in the odometry frame (metres)."""
        self._need("odometry")
        self._model.append(np.asarray(model_position, dtype=np.float64).reshape(3))
        self._odom.append(np.asarray(odom_position, dtype=np.float64).reshape(3))
        model, odom = np.stack(self._model), np.stack(self._odom)
        i, j = np.triu_indices(len(odom), 1)
        d_odom = np.linalg.norm(odom[i] - odom[j], axis=1)
        d_model = np.linalg.norm(model[i] - model[j], axis=1)
        baseline = float(d_odom.max()) if len(d_odom) else 0.0
        if baseline < self.config.min_baseline_m:
            status = (
                f"odometry scale: too little baseline ({baseline:.3f} m over {len(odom)} keyframes, "
                f"need {self.config.min_baseline_m} m); publishing in model units"
            )
            self.estimate = ScaleEstimate(None, 0.0, len(odom), status)
            return self.estimate
        use = (d_odom >= self.config.min_pair_m) & (d_model > 0)
        scale, spread = _robust(d_odom[use] / d_model[use], self.config.trim)
        status = f"odometry scale {scale:.4f} m/unit (spread {spread:.3f}, baseline {baseline:.2f} m)"
        self.estimate = ScaleEstimate(scale, spread, len(odom), status)
        return self.estimate

    def add_depth(self, predicted: np.ndarray, sensor: np.ndarray) -> ScaleEstimate:
        """One frame: predicted z-depth (model units) and the aligned sensor depth (metres), same shape."""
        self._need("depth")
        predicted, sensor = np.asarray(predicted, dtype=np.float64), np.asarray(sensor, dtype=np.float64)
        if predicted.shape != sensor.shape:
            raise InputError(f"depth scale: expected sensor depth of shape {predicted.shape}, got {sensor.shape}")
        with np.errstate(invalid="ignore"):
            valid = (predicted > 0) & (sensor > 0) & (sensor <= self.config.max_depth_m)
        valid &= np.isfinite(predicted) & np.isfinite(sensor)
        n = int(valid.sum())
        if n >= self.config.min_valid_pixels:
            self._ratios.append(float(np.median(sensor[valid] / predicted[valid])))
        if not self._ratios:
            status = f"depth scale: {n} valid pixels, need {self.config.min_valid_pixels}; publishing in model units"
            self.estimate = ScaleEstimate(None, 0.0, 0, status)
            return self.estimate
        scale, spread = _robust(np.asarray(self._ratios), self.config.trim)
        status = f"depth scale {scale:.4f} m/unit (spread {spread:.3f}, {len(self._ratios)} frames)"
        self.estimate = ScaleEstimate(scale, spread, len(self._ratios), status)
        return self.estimate

    def _need(self, source: str) -> None:
        if self.config.source != source:
            raise InputError(f"scale: {source} samples given, but scale_source is {self.config.source!r}")


def scaled_frame(frame: FrameResult, scale: float) -> FrameResult:
    """`frame` with depth, points and camera position multiplied by `scale` (rotations and K unchanged)."""
    pose = frame.cam_to_world.copy()
    pose[:3, 3] *= scale
    return replace(
        frame,
        depth=(frame.depth * scale).astype(frame.depth.dtype),
        world_points=(frame.world_points * scale).astype(frame.world_points.dtype),
        cam_to_world=pose,
        relative_scale=False,
    )
