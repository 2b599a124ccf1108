"""Frame selection for log extraction: max rate, blur, near-duplicate and motion keyframes, per camera.

Each frame gets a `Decision` with its reason, checked in this order (cheapest first): too soon after
the last kept frame (`max_rate`), blurred (variance of the Laplacian below `blur_ratio` times the
running median of the camera's recent frames: relative, so it adapts to the scene and the camera),
a near-duplicate of the last kept frame (mean absolute grey difference), too little motion since the
last kept frame (median sparse optical flow below `min_flow` pixels).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from fin3r_lib.data.frame import Frame
from fin3r_lib.errors import InputError
from fin3r_lib.motion import sharpness, sparse_flow, to_gray


@dataclass(frozen=True)
class SelectionConfig:
    """Selection thresholds; None turns a check off.

    `max_rate`: Hz per camera. `min_flow`: pixels of median flow from the last kept frame.
    `blur_ratio`: reject below this fraction of the running median sharpness (over `blur_window`
    frames, judged once `blur_min_history` frames are known). `duplicate_level`: mean absolute grey
    difference (0..255, on a 160-pixel thumbnail) to the last kept frame below which a frame is a copy.
    """

    max_rate: float | None = None
    min_flow: float | None = None
    blur_ratio: float | None = 0.5
    blur_window: int = 15
    blur_min_history: int = 3
    duplicate_level: float | None = 1.0

    def __post_init__(self) -> None:
        for name in ("max_rate", "min_flow", "blur_ratio", "duplicate_level"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise InputError(f"selection: {name} must be > 0 or None, got {value!r}")
        if self.blur_window < 1 or self.blur_min_history < 1:
            raise InputError(
                f"selection: blur_window and blur_min_history must be >= 1, got {self.blur_window}, "
                f"{self.blur_min_history}"
            )


@dataclass(frozen=True)
class Decision:
    """Whether a frame is kept, why, and the measures behind it (None when not measured)."""

    keep: bool
    reason: str
    sharpness: float | None = None
    flow_px: float | None = None


@dataclass
class _CameraState:
    sharpness: deque = field(default_factory=deque)
    kept_stamp: float | None = None
    kept_rgb: np.ndarray | None = None
    kept_thumb: np.ndarray | None = None
    kept_index: int = -1


class FrameSelector:
    """Decides frame by frame, keeping per-camera state (the last kept frame, recent sharpness)."""

    def __init__(self, config: SelectionConfig | None = None) -> None:
        self.config = config or SelectionConfig()
        self._cameras: dict[str, _CameraState] = {}

    def decide(self, frame: Frame) -> Decision:
        """The decision for `frame` (frames of one camera must come in time order)."""
        cfg = self.config
        state = self._cameras.setdefault(frame.camera, _CameraState(deque(maxlen=cfg.blur_window)))
        if cfg.max_rate is not None and state.kept_stamp is not None:
            gap = frame.stamp - state.kept_stamp
            if gap < 1.0 / cfg.max_rate - 1e-6:
                return Decision(False, f"rate: {gap:.3f} s after the last kept frame (max {cfg.max_rate:g} Hz)")
        sharp = None
        if cfg.blur_ratio is not None:
            sharp = sharpness(frame.rgb)
            history = state.sharpness
            median = float(np.median(history)) if len(history) >= cfg.blur_min_history else None
            history.append(sharp)
            if median is not None and sharp < cfg.blur_ratio * median:
                reason = f"blur: sharpness {sharp:.1f} < {cfg.blur_ratio:g} x running median {median:.1f}"
                return Decision(False, reason, sharp)
        thumb = to_gray(frame.rgb, max_side=160).astype(np.int16)
        if state.kept_rgb is None:
            return self._keep(state, frame, thumb, Decision(True, "first frame of the camera", sharp))
        if cfg.duplicate_level is not None and thumb.shape == state.kept_thumb.shape:
            diff = float(np.mean(np.abs(thumb - state.kept_thumb)))
            if diff < cfg.duplicate_level:
                reason = (
                    f"near-duplicate: mean grey difference {diff:.2f} < {cfg.duplicate_level:g}"
                    f" to kept frame {state.kept_index}"
                )
                return Decision(False, reason, sharp)
        if cfg.min_flow is None:
            return self._keep(state, frame, thumb, Decision(True, "passed rate, blur and duplicate checks", sharp))
        if frame.rgb.shape != state.kept_rgb.shape:
            return self._keep(state, frame, thumb, Decision(True, "image size changed", sharp))
        flow = sparse_flow(state.kept_rgb, frame.rgb).flow_px
        if flow < cfg.min_flow:
            return Decision(False, f"low motion: median flow {flow:.2f} px < {cfg.min_flow:g} px", sharp, flow)
        return self._keep(state, frame, thumb, Decision(True, f"keyframe: median flow {flow:.2f} px", sharp, flow))

    @staticmethod
    def _keep(state: _CameraState, frame: Frame, thumb: np.ndarray, decision: Decision) -> Decision:
        state.kept_stamp, state.kept_rgb, state.kept_thumb, state.kept_index = (
            frame.stamp,
            frame.rgb,
            thumb,
            frame.index,
        )
        return decision
