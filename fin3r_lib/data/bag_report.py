"""What reading a bag gave (`ReadReport`) and the error of a bag that cannot be read as asked (`BagError`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fin3r_lib.errors import InputError


class BagError(InputError):
    """A bag could not be read, or does not hold what was asked of it."""


@dataclass
class ReadReport:
    """What reading one bag gave: counts, and where reading stopped when the file is damaged.

    `messages` is what the bag says it holds (None when unknown); `readable` what could be read back;
    `lost` the difference plus messages of the read topics that failed mid-iteration or to decode.
    `no_depth`: colour frames for which the depth topic had no image within the pairing tolerance.
    """

    path: str
    messages: int | None = None
    readable: int = 0
    frames: int = 0
    unposed: int = 0
    outside_range: int = 0
    no_depth: int = 0
    lost: int | None = 0
    stopped_at: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def damaged(self) -> bool:
        """True when messages were lost or reading stopped early."""
        return bool(self.lost) or bool(self.stopped_at) or bool(self.errors)

    def __str__(self) -> str:
        total = "unknown" if self.messages is None else str(self.messages)
        lost = "unknown" if self.lost is None else str(self.lost)
        where = f"; stopped at {', '.join(self.stopped_at)}" if self.stopped_at else ""
        errors = f"; errors: {' | '.join(self.errors[:3])}" if self.errors else ""
        return f"{self.path}: {self.readable} of {total} messages readable, {lost} lost{where}{errors}"

    def add_lost(self, count: int) -> None:
        """Count `count` more lost messages (the total stays unknown when it is)."""
        self.lost = None if self.lost is None else self.lost + count
