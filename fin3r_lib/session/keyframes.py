"""The keyframe gate: a frame becomes a keyframe when the camera moved or enough time passed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fin3r_lib.motion import sparse_flow


@dataclass(frozen=True)
class GateDecision:
    """Whether a frame is a keyframe, why, and the motion measured against the last keyframe."""

    is_keyframe: bool
    reason: str  # "first", "motion", "interval" or "duplicate"
    flow_px: float


class KeyframeGate:
    """Accepts a frame when its median sparse flow against the last keyframe reaches `min_flow_px`
    (a lost track counts as motion) or when `max_interval_s` passed since that keyframe."""

    def __init__(self, min_flow_px: float, max_interval_s: float) -> None:
        self.min_flow_px = min_flow_px
        self.max_interval_s = max_interval_s
        self._last_rgb: np.ndarray | None = None
        self._last_stamp = 0.0

    def decide(self, rgb: np.ndarray, stamp: float) -> GateDecision:
        """Judge a frame against the last accepted keyframe (does not accept it: see `accept`)."""
        if self._last_rgb is None:
            return GateDecision(True, "first", float("inf"))
        flow = sparse_flow(self._last_rgb, rgb).flow_px
        if flow >= self.min_flow_px:
            return GateDecision(True, "motion", flow)
        if stamp - self._last_stamp >= self.max_interval_s:
            return GateDecision(True, "interval", flow)
        return GateDecision(False, "duplicate", flow)

    def accept(self, rgb: np.ndarray, stamp: float) -> None:
        """Make this frame the reference of later decisions."""
        self._last_rgb = rgb
        self._last_stamp = stamp

    def reset(self) -> None:
        """Forget the last keyframe: the next frame is a keyframe."""
        self._last_rgb = None

    def state_dict(self) -> dict[str, np.ndarray]:
        """The gate's state as arrays (a run's resume state); `load_state_dict` restores it exactly."""
        last = self._last_rgb if self._last_rgb is not None else np.zeros((0, 0, 3), np.uint8)
        return {"last_rgb": last, "last_stamp": np.float64(self._last_stamp)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore a `state_dict`."""
        last = np.asarray(state["last_rgb"])
        self._last_rgb = last if last.size else None
        self._last_stamp = float(state["last_stamp"])
