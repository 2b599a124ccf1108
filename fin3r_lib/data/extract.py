"""Bags in, frame dataset out: read frames, select keyframes, write the dataset (what `fin3r extract` runs)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rosbags.typesys import Stores
from tqdm import tqdm

from fin3r_lib.data.bag import BagSelection, frames_of, open_bags
from fin3r_lib.data.bag_report import BagError, ReadReport
from fin3r_lib.data.dataset import FrameDatasetWriter
from fin3r_lib.data.frame import Frame
from fin3r_lib.data.selection import Decision, FrameSelector, SelectionConfig
from fin3r_lib.errors import Fin3rError


@dataclass(frozen=True)
class ExtractOptions:
    """What to extract and how. `start` / `end`: seconds from the start of each bag; `depth_topics`: one
    aligned depth topic per colour topic (see `BagSelection`); `typestore`: a `rosbags.typesys.Stores`
    value (e.g. "ros2_humble") for bags without embedded definitions."""

    topics: tuple[str, ...] | None = None
    depth_topics: tuple[str, ...] = ()
    depth_tolerance: float = 0.02
    image_format: str = "png"
    jpeg_quality: int = 95
    fixed_frame: str | None = None
    start: float | None = None
    end: float | None = None
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    workers: int | None = None
    typestore: str | None = None

    def store(self) -> Stores | None:
        """The typestore as a `Stores` member (None: the latest)."""
        if self.typestore is None:
            return None
        try:
            return Stores(self.typestore)
        except ValueError:
            raise BagError(
                f"unknown typestore {self.typestore!r}; expected one of {[s.value for s in Stores]}"
            ) from None

    def bag_selection(self) -> BagSelection:
        """What is read of each bag (checked: BagError for an empty time window)."""
        return BagSelection(
            self.topics, self.depth_topics, self.fixed_frame, self.start, self.end, self.depth_tolerance
        )

    def settings(self, bags: Sequence[Path]) -> dict:
        """What determines the output (not `workers`), as stored in the dataset's settings.json."""
        out = asdict(self)
        out.pop("workers")
        out["topics"] = None if self.topics is None else list(self.topics)
        out["depth_topics"] = list(self.depth_topics)
        out["bags"] = [str(Path(b).resolve()) for b in bags]
        return out


@dataclass
class ExtractResult:
    """Counts of a run: frames considered and kept, images written now and skipped as already done."""

    out: Path
    considered: int
    kept: int
    written: int
    skipped: int
    reports: list[ReadReport]


class ExtractInterrupted(Fin3rError):
    """An extraction stopped by Ctrl-C or SIGTERM; what was written is kept and a re-run resumes it."""

    def __init__(self, out: Path, considered: int, written: int) -> None:
        super().__init__(
            f"interrupted after {considered} frames ({written} images written) into {out}; "
            "run the same command again to resume"
        )
        self.out, self.considered, self.written = out, considered, written


def extract_frames(
    bags: Sequence[str | Path],
    out: str | Path,
    options: ExtractOptions | None = None,
    *,
    progress: bool = True,
    on_frame: Callable[[Frame, Decision], None] | None = None,
) -> ExtractResult:
    """Extract the frames of `bags` into the dataset folder `out` (resuming a previous cut run there).

    Every bag is opened and checked against the options (topics, time window, fixed frame) before
    anything is written. `progress`: a tqdm bar on stderr when it is a terminal. `on_frame` is called
    after each decision. Ctrl-C (KeyboardInterrupt) raises `ExtractInterrupted`, the output kept.
    """
    options = options or ExtractOptions()
    bags = [Path(b) for b in bags]
    reports: list[ReadReport] = []
    with open_bags(bags, options.bag_selection(), options.store(), reports) as opened:
        writer = FrameDatasetWriter(out, options.image_format, options.jpeg_quality, options.settings(bags))
        selector = FrameSelector(options.selection)
        frames = frames_of(opened, options.workers)
        bar = tqdm(frames, unit="frame", desc="extract", disable=not progress or not sys.stderr.isatty())
        try:
            for frame in bar:
                decision = selector.decide(frame)
                measures = {"sharpness": decision.sharpness, "flow_px": decision.flow_px}
                writer.add(frame, decision.keep, decision.reason, **measures)
                if on_frame is not None:
                    on_frame(frame, decision)
        except KeyboardInterrupt:
            writer.abort()
            raise ExtractInterrupted(Path(out), len(writer.decisions), writer.written) from None
        except BaseException:
            writer.abort()
            raise
        finally:
            bar.close()
    writer.close({"reports": [asdict(r) for r in reports]})
    kept = sum(d["keep"] for d in writer.decisions)
    return ExtractResult(Path(out), len(writer.decisions), kept, writer.written, writer.skipped, reports)
