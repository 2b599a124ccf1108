"""Pair each image with companion messages (camera_info, an aligned depth image) by stamp.

A companion pairs with an image when its stamp equals the image's, else when it is the nearest one
within `tolerance_ns`. Messages of one stream are assumed to arrive in stamp order; images wait in a
bounded queue until every companion stream either matched exactly or has moved past
`image stamp + tolerance` (nothing closer can still come), or the queue overflows (the oldest image is
then decided with what has arrived), or the caller releases it (`release_waiting`: a time-out). With
`wait_for_unheard=False` a stream that has not delivered anything yet is not waited for (an optional
topic nobody publishes). Every buffer is bounded; decided images come back in arrival order.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fin3r_lib.errors import InputError


class CompanionBuffer:
    """The last `max_items` messages of one stream, looked up by stamp (nanoseconds)."""

    def __init__(self, max_items: int) -> None:
        if not isinstance(max_items, int) or max_items < 1:
            raise InputError(f"CompanionBuffer.max_items: expected an integer >= 1, got {max_items!r}")
        self._stamps: deque[int] = deque(maxlen=max_items)
        self._items: deque[Any] = deque(maxlen=max_items)

    def add(self, stamp_ns: int, item: Any) -> None:
        """Record `item`; one older than the newest recorded message is dropped (out of order)."""
        if self._stamps and stamp_ns < self._stamps[-1]:
            return
        if self._stamps and stamp_ns == self._stamps[-1]:
            self._items[-1] = item
            return
        self._stamps.append(stamp_ns)
        self._items.append(item)

    @property
    def newest_ns(self) -> int | None:
        """Stamp of the newest message, None when empty."""
        return self._stamps[-1] if self._stamps else None

    def nearest(self, stamp_ns: int, tolerance_ns: int) -> tuple[Any, int] | None:
        """(item, |stamp difference| ns) of the nearest message within `tolerance_ns`, else None."""
        stamps = self._stamps
        i = bisect.bisect_left(stamps, stamp_ns)
        best = None
        for j in (i - 1, i):
            if 0 <= j < len(stamps):
                d = abs(stamps[j] - stamp_ns)
                if d <= tolerance_ns and (best is None or d < best[1]):
                    best = (self._items[j], d)
        return best


@dataclass
class PairedImage:
    """An image with its companions (None where a stream had nothing within the tolerance)."""

    stamp_ns: int
    image: Any
    companions: dict[str, Any]

    @property
    def complete(self) -> bool:
        """Whether every companion stream gave a message."""
        return all(v is not None for v in self.companions.values())


@dataclass
class PairingCounts:
    """Counters for diagnostics: images decided, and per stream how many found no companion."""

    images: int = 0
    unpaired: dict[str, int] = field(default_factory=dict)
    dropped_waiting: int = 0  # images decided early because the waiting queue was full
    timed_out: int = 0  # images decided early by `release_waiting`


class StampPairer:
    """Images paired with the companion streams `streams` (e.g. ("camera_info", "depth"))."""

    def __init__(
        self,
        streams: tuple[str, ...],
        tolerance_s: float,
        max_companions: int = 64,
        max_waiting: int = 8,
        wait_for_unheard: bool = True,
    ) -> None:
        if not tolerance_s >= 0:
            raise InputError(f"pairing tolerance: expected seconds >= 0, got {tolerance_s!r}")
        if not isinstance(max_waiting, int) or max_waiting < 1:
            raise InputError(f"pairing max_waiting: expected an integer >= 1, got {max_waiting!r}")
        self.tolerance_ns = round(tolerance_s * 1e9)
        self._buffers = {name: CompanionBuffer(max_companions) for name in streams}
        self._waiting: deque[tuple[int, Any]] = deque()
        self._max_waiting = max_waiting
        self._wait_for_unheard = wait_for_unheard
        self.counts = PairingCounts(unpaired=dict.fromkeys(streams, 0))

    def add_companion(self, stream: str, stamp_ns: int, item: Any) -> list[PairedImage]:
        """Record a companion message; returns the images this decided."""
        if stream not in self._buffers:
            raise InputError(f"pairing: unknown stream {stream!r}; expected one of {sorted(self._buffers)}")
        self._buffers[stream].add(stamp_ns, item)
        return self._release()

    def add_image(self, stamp_ns: int, image: Any) -> list[PairedImage]:
        """Queue an image; returns the images decided now (possibly this one), in arrival order."""
        self._waiting.append((stamp_ns, image))
        out = []
        if len(self._waiting) > self._max_waiting:
            self.counts.dropped_waiting += 1
            out.append(self._decide(*self._waiting.popleft()))
        return out + self._release()

    def release_waiting(self, expired: Callable[[Any], bool]) -> list[PairedImage]:
        """Decide the oldest waiting images for which `expired(image)` holds (then any made ready), in order."""
        out = []
        while self._waiting and expired(self._waiting[0][1]):
            self.counts.timed_out += 1
            out.append(self._decide(*self._waiting.popleft()))
        return out + self._release()

    def flush(self) -> list[PairedImage]:
        """Decide every waiting image with what has arrived (end of input)."""
        out = [self._decide(*w) for w in self._waiting]
        self._waiting.clear()
        return out

    def _ready(self, stamp_ns: int) -> bool:
        for buf in self._buffers.values():
            hit = buf.nearest(stamp_ns, 0)
            newest = buf.newest_ns
            if newest is None and not self._wait_for_unheard:
                continue
            if hit is None and (newest is None or newest < stamp_ns + self.tolerance_ns):
                return False
        return True

    def _release(self) -> list[PairedImage]:
        out = []
        while self._waiting and self._ready(self._waiting[0][0]):
            out.append(self._decide(*self._waiting.popleft()))
        return out

    def _decide(self, stamp_ns: int, image: Any) -> PairedImage:
        companions = {}
        for name, buf in self._buffers.items():
            hit = buf.nearest(stamp_ns, self.tolerance_ns)
            companions[name] = None if hit is None else hit[0]
            if hit is None:
                self.counts.unpaired[name] += 1
        self.counts.images += 1
        return PairedImage(stamp_ns, image, companions)
