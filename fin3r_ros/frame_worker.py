"""A latest-frame slot and the worker thread that drains it: the model never runs in a ROS callback.

Callbacks `put` what they received and return at once; the worker takes the newest item when it is
free. An item replaced before the worker took it is dropped and counted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class FrameWorker(Generic[T]):
    """One worker thread running `handle(item)` on the newest item put; older waiting items are dropped.

    `handle` must catch its own expected errors; anything it raises goes to `on_error(item, exc)` and
    the worker keeps going.
    """

    def __init__(
        self,
        handle: Callable[[T], None],
        on_error: Callable[[T, BaseException], None],
        name: str = "frame_worker",
    ) -> None:
        self._handle = handle
        self._on_error = on_error
        self._cond = threading.Condition()
        self._item: T | None = None
        self._waiting = False
        self._busy = False
        self._stopped = False
        self.dropped = 0  # items replaced before the worker took them
        self.handled = 0  # items handed to `handle`
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def put(self, item: T) -> bool:
        """Offer `item`; returns True when it replaced a waiting item (which is then dropped)."""
        with self._cond:
            replaced = self._waiting
            if replaced:
                self.dropped += 1
            self._item, self._waiting = item, True
            self._cond.notify_all()
        return replaced

    @property
    def waiting(self) -> bool:
        """True while an item waits for the worker (the next `put` would drop it)."""
        with self._cond:
            return self._waiting

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing waits and nothing runs; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._waiting and not self._busy, timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Let the current item finish, drop a waiting one, and join the thread."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._waiting or self._stopped)
                if self._stopped:
                    return
                item, self._item, self._waiting, self._busy = self._item, None, False, True
            try:
                self.handled += 1
                self._handle(item)  # type: ignore[arg-type]
            except Exception as exc:
                self._on_error(item, exc)  # type: ignore[arg-type]
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
