"""Bags in, frame dataset out: read frames, select keyframes, write the dataset (what `fin3r extract` runs)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rosbags.typesys import Stores
from tqdm import tqdm

from fin3r_lib.data.bag import BagError, ReadReport, iter_bag_frames
from fin3r_lib.data.dataset import FrameDatasetWriter
from fin3r_lib.data.frame import Frame
from fin3r_lib.data.selection import Decision, FrameSelector, SelectionConfig


@dataclass(frozen=True)
class ExtractOptions:
    """What to extract and how. `start` / `end`: seconds from the start of each bag; `typestore`: a
    `rosbags.typesys.Stores` value (e.g. "ros2_humble") for bags without embedded definitions."""

    topics: tuple[str, ...] | None = None
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

    def settings(self, bags: Sequence[Path]) -> dict:
        """What determines the output (not `workers`), as stored in the dataset's settings.json."""
        out = asdict(self)
        out.pop("workers")
        out["topics"] = None if self.topics is None else list(self.topics)
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


def extract_frames(
    bags: Sequence[str | Path],
    out: str | Path,
    options: ExtractOptions | None = None,
    *,
    progress: bool = True,
    on_frame: Callable[[Frame, Decision], None] | None = None,
) -> ExtractResult:
    """Extract the frames of `bags` into the dataset folder `out` (resuming a previous cut run there).

    `progress`: a tqdm bar on stderr when it is a terminal. `on_frame` is called after each decision.
    """
    options = options or ExtractOptions()
    bags = [Path(b) for b in bags]
    store = options.store()
    writer = FrameDatasetWriter(out, options.image_format, options.jpeg_quality, options.settings(bags))
    selector = FrameSelector(options.selection)
    reports: list[ReadReport] = []
    frames = iter_bag_frames(
        bags,
        options.topics,
        fixed_frame=options.fixed_frame,
        start=options.start,
        end=options.end,
        workers=options.workers,
        typestore=store,
        reports=reports,
    )
    bar = tqdm(frames, unit="frame", desc="extract", disable=not progress or not sys.stderr.isatty())
    try:
        for frame in bar:
            decision = selector.decide(frame)
            writer.add(frame, decision.keep, decision.reason, sharpness=decision.sharpness, flow_px=decision.flow_px)
            if on_frame is not None:
                on_frame(frame, decision)
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    writer.close({"reports": [asdict(r) for r in reports]})
    kept = sum(d["keep"] for d in writer.decisions)
    return ExtractResult(Path(out), len(writer.decisions), kept, writer.written, writer.skipped, reports)
