"""The node's running figures (rates, latency, model time, drops, errors) and their /diagnostics status.

Thread-safe: the callbacks and the worker record, a timer reports.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue


class RateMeter:
    """Events per second over a sliding window."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()
        self.count = 0

    def tick(self, now: float) -> None:
        """Record one event at monotonic time `now`."""
        self.count += 1
        self._times.append(now)
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()

    def rate(self, now: float) -> float:
        """Events per second in the window ending at `now`."""
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()
        if len(self._times) < 2:
            return 0.0
        span = max(now - self._times[0], self._times[-1] - self._times[0])
        return (len(self._times) - 1) / span if span > 0 else 0.0


class NodeStats:
    """Counters and recent timings of the node."""

    def __init__(self, window: int = 200) -> None:
        self._lock = threading.Lock()
        self.received = RateMeter()
        self.published = RateMeter()
        self.timings: dict[str, deque[float]] = {k: deque(maxlen=window) for k in ("model_s", "total_s", "latency_s")}
        self.errors: Counter[str] = Counter()
        self.resets = 0
        self.keyframes = 0
        self._errors_reported = 0

    def frame_received(self) -> None:
        """An image arrived (callback)."""
        with self._lock:
            self.received.tick(time.monotonic())

    def frame_published(self, model_s: float, total_s: float, latency_s: float, is_keyframe: bool) -> None:
        """A frame's outputs went out: its model time, session time and receive-to-publish latency."""
        with self._lock:
            self.published.tick(time.monotonic())
            for key, value in (("model_s", model_s), ("total_s", total_s), ("latency_s", latency_s)):
                self.timings[key].append(value)
            self.keyframes += int(is_keyframe)

    def error(self, kind: str) -> None:
        """Count one error of `kind` (e.g. the exception's class name)."""
        with self._lock:
            self.errors[kind] += 1

    def latencies(self) -> list[float]:
        """Recent receive-to-publish latencies (seconds)."""
        with self._lock:
            return list(self.timings["latency_s"])

    def status(self, name: str, hardware_id: str, dropped: int) -> DiagnosticStatus:
        """A DiagnosticStatus of the figures; WARN when errors happened since the previous status."""
        now = time.monotonic()
        with self._lock:
            values = {
                "input rate (Hz)": f"{self.received.rate(now):.2f}",
                "output rate (Hz)": f"{self.published.rate(now):.2f}",
                "frames received": str(self.received.count),
                "frames published": str(self.published.count),
                "frames dropped": str(dropped),
                "keyframes": str(self.keyframes),
                "resets": str(self.resets),
                "errors": str(sum(self.errors.values())),
            }
            for key, series in self.timings.items():
                ms = np.asarray(series) * 1000.0
                values[f"{key[:-2]} p50 (ms)"] = f"{np.median(ms):.1f}" if len(ms) else "nan"
                values[f"{key[:-2]} p99 (ms)"] = f"{np.percentile(ms, 99):.1f}" if len(ms) else "nan"
            values.update({f"errors: {k}": str(v) for k, v in sorted(self.errors.items())})
            total_errors = sum(self.errors.values())
            new_errors = total_errors - self._errors_reported
            self._errors_reported = total_errors
        level, message = DiagnosticStatus.OK, "running"
        if new_errors:
            level, message = DiagnosticStatus.WARN, f"{new_errors} frame(s) failed since the last report"
        return DiagnosticStatus(
            level=level,
            name=name,
            message=message,
            hardware_id=hardware_id,
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
