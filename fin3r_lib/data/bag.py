"""Robot logs in: camera frames with calibration, TF poses and optional aligned depth from rosbag2 and ROS 1 bags.

Reading goes through `rosbags` (`AnyReader`), so no ROS install is needed. Every image of the chosen
`sensor_msgs/Image` and `CompressedImage` topics becomes a `Frame`, paired with the latest `CameraInfo`
of its camera (`NS/camera_info` beside `NS/image_raw` or `NS/image_raw/compressed`), with the pose of its
optical frame (`header.frame_id`, OpenCV axes by REP 103) in a fixed frame interpolated at the image
stamp when the bag holds `/tf` and `/tf_static`, and, given a depth topic per colour topic, with the
depth image nearest in stamp (`pairing.StampPairer`). Stamps are integer nanoseconds (`Frame.stamp_ns`).

`open_bags` opens every bag and checks everything asked of it (topics, time window, fixed frame) before
a single frame is read, reading the small messages first (`bag_context`); `bag_frames` then reads the
images in bag order. Each bag's `ReadReport` says what was lost and where.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores

from fin3r_lib.data.bag_context import Calibration, Context, read_context
from fin3r_lib.data.bag_decode import Decoded, Inline, Ready, decode_colour, decode_depth
from fin3r_lib.data.bag_messages import read_messages
from fin3r_lib.data.bag_open import as_paths, open_bag
from fin3r_lib.data.bag_report import BagError, ReadReport
from fin3r_lib.data.bag_times import topic_log_range
from fin3r_lib.data.bag_topics import COMPRESSED_IMAGE, CameraStream, choose_streams
from fin3r_lib.data.frame import Frame
from fin3r_lib.data.pairing import PairedImage, StampPairer
from fin3r_lib.data.tf_buffer import TfError
from fin3r_lib.outputs import format_stamp_ns

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BagSelection:
    """What to read of each bag.

    `topics`: colour image topics (default: every colour image topic). `depth_topics`: one aligned depth
    Image topic per colour topic, in order (empty: no depth); a depth image pairs with the colour image
    nearest in stamp within `depth_tolerance` seconds. `fixed_frame`: frame the poses are expressed in
    (default: the root of the camera's TF tree). `start` / `end`: seconds from the start of each bag (log
    time); images outside are skipped undecoded.
    """

    topics: Sequence[str] | None = None
    depth_topics: Sequence[str] = ()
    fixed_frame: str | None = None
    start: float | None = None
    end: float | None = None
    depth_tolerance: float = 0.02

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.start > self.end:
            raise BagError(f"empty time window: --start {self.start:g} s is after --end {self.end:g} s")
        if not self.depth_tolerance >= 0:
            raise BagError(f"depth pairing tolerance: expected seconds >= 0, got {self.depth_tolerance!r}")


@dataclass
class OpenedBag:
    """A bag opened and checked for a selection: its reader, report, streams, context and time window (ns)."""

    path: Path
    reader: AnyReader
    report: ReadReport
    streams: dict[str, CameraStream]
    context: Context
    window: tuple[int | None, int | None]
    fixed_frame: str | None = None
    pairers: dict[str, StampPairer] = field(default_factory=dict)


def _window(
    reader: AnyReader, path: Path, selection: BagSelection, topics: Sequence[str]
) -> tuple[int | None, int | None]:
    """Log-time bounds (ns) of `start` / `end` seconds from the bag's start; BagError when they hold no image of
    `topics` (the image topics' own time range, not the whole bag's, which TF or other topics may extend)."""
    start, end = selection.start, selection.end
    if reader.message_count == 0:
        raise BagError(f"{path} holds no message")
    t0 = reader.start_time
    lo = None if start is None else t0 + round(start * 1e9)
    hi = None if end is None else t0 + round(end * 1e9)
    if lo is None and hi is None:
        return lo, hi
    first, last = topic_log_range(reader, path, topics) or (None, None)
    if first is None or (lo is not None and lo > last) or (hi is not None and hi < first):
        span = (
            "none has a message"
            if first is None
            else f"they span {(first - t0) / 1e9:.3f} .. {(last - t0) / 1e9:.3f} s"
            f" ({format_stamp_ns(first)} .. {format_stamp_ns(last)})"
        )
        raise BagError(
            f"the time window --start {start} --end {end} (seconds from the bag's start, "
            f"{format_stamp_ns(t0)}) holds no image of {list(topics)} in {path}: {span}"
        )
    return lo, hi


def _checked(reader: AnyReader, report: ReadReport, path: Path, selection: BagSelection) -> OpenedBag:
    """Everything `selection` asks of one bag checked, its context read (BagError saying what is missing)."""
    streams = choose_streams(reader, path, selection.topics, selection.depth_topics)
    window = _window(reader, path, selection, list(streams))
    context = read_context(reader, streams, report)
    fixed = selection.fixed_frame
    if fixed and context.tf.frames and fixed.lstrip("/") not in context.tf.frames:
        raise BagError(f"fixed frame {fixed!r} is not in the TF tree of {path}; frames: {sorted(context.tf.frames)}")
    pairers = {s.topic: StampPairer(("depth",), selection.depth_tolerance) for s in streams.values() if s.depth_topic}
    return OpenedBag(path, reader, report, streams, context, window, fixed, pairers)


@contextmanager
def open_bags(
    paths: str | Path | Iterable[str | Path],
    selection: BagSelection | None = None,
    typestore: Stores | None = None,
    reports: list[ReadReport] | None = None,
) -> Iterator[list[OpenedBag]]:
    """Open every bag of `paths` and check `selection` against each before any image is read.

    `typestore`: definitions for bags that embed none. `reports` receives one `ReadReport` per bag
    (complete once its frames are exhausted).
    """
    selection = selection or BagSelection()
    with ExitStack() as stack:
        opened = []
        for path in as_paths(paths):
            reader, report = stack.enter_context(open_bag(path, typestore))
            if reports is not None:
                reports.append(report)
            opened.append(_checked(reader, report, path, selection))
        yield opened


def _pose(bag: OpenedBag, frame_id: str, stamp: float):
    """Camera-to-fixed pose of the optical frame `frame_id` at `stamp` seconds, or None (noted in the report)."""
    tf = bag.context.tf
    if not tf.frames:
        return None
    try:
        return tf.lookup(bag.fixed_frame or tf.root(frame_id), frame_id, stamp)
    except TfError as exc:
        bag.report.unposed += 1
        if len(bag.report.errors) < 5:
            bag.report.errors.append(f"no pose: {exc}")
        return None


@dataclass
class _Pending:
    future: Future | Ready
    stream: CameraStream
    index: int
    calibration: Calibration | None


def _with_depth(bag: OpenedBag, stream: CameraStream, paired: PairedImage) -> Frame:
    """The paired colour frame with its depth (None, counted, when the depth stream had none near it)."""
    frame: Frame = paired.image
    depth = paired.companions["depth"]
    if depth is None:
        bag.report.no_depth += 1
    elif depth.shape != frame.rgb.shape[:2]:
        raise BagError(
            f"depth topic {stream.depth_topic}: expected depth aligned to {stream.topic}, of its size "
            f"{frame.rgb.shape[:2]}, got {depth.shape} (choose a depth topic registered to the colour camera)"
        )
    frame.depth = depth
    return frame


def _add_depth(bag: OpenedBag, stream: CameraStream, decoded: Decoded) -> list[PairedImage]:
    if decoded.pixels is None:
        bag.report.add_lost(1)
        bag.report.errors.append(decoded.error)
        return []
    return bag.pairers[stream.topic].add_companion("depth", decoded.stamp_ns, decoded.pixels)


def bag_frames(bag: OpenedBag, pool: ThreadPoolExecutor | Inline, max_pending: int) -> Iterator[Frame]:
    """The frames of one opened bag, in bag order (decoded on `pool`, at most `max_pending` in flight)."""
    report, context = bag.report, bag.context
    inline = Inline()
    counters = dict.fromkeys(bag.streams, 0)
    pending: deque[_Pending] = deque()
    by_depth = {s.depth_topic: s for s in bag.streams.values() if s.depth_topic}

    def decided(frame: Frame, stream: CameraStream) -> list[Frame]:
        if stream.topic not in bag.pairers:
            return [frame]
        return [_with_depth(bag, stream, p) for p in bag.pairers[stream.topic].add_image(frame.stamp_ns, frame)]

    def release(final: bool) -> Iterator[Frame]:
        while pending and (final or pending[0].future.done() or len(pending) > max_pending):
            item = pending.popleft()
            decoded: Decoded = item.future.result()
            if decoded.pixels is None:
                report.add_lost(1)
                report.errors.append(decoded.error)
                continue
            report.frames += 1
            calibration, stamp = item.calibration, decoded.stamp_ns / 1e9
            frame = Frame(
                rgb=decoded.pixels,
                stamp=stamp,
                stamp_ns=decoded.stamp_ns,
                camera=item.stream.camera,
                frame_id=decoded.frame_id,
                intrinsics=None if calibration is None else calibration.K,
                distortion=None if calibration is None else calibration.distortion,
                cam_to_world=_pose(bag, decoded.frame_id, stamp),
                index=item.index,
                source=f"{bag.path}#{item.stream.topic}@{item.index}",
            )
            yield from decided(frame, item.stream)

    lo, hi = bag.window
    connections = [c for c in bag.reader.connections if c.topic in bag.streams or c.topic in by_depth]
    for conn, log_ns, raw in read_messages(bag.reader, connections, report):
        if (lo is not None and log_ns < lo) or (hi is not None and log_ns > hi):
            report.outside_range += 1
            continue
        if conn.topic in by_depth:
            stream = by_depth[conn.topic]
            for paired in _add_depth(bag, stream, decode_depth(bag.reader, raw, conn.msgtype, conn.topic)):
                yield _with_depth(bag, stream, paired)
            continue
        stream = bag.streams[conn.topic]
        executor = pool if conn.msgtype == COMPRESSED_IMAGE else inline  # see bag_decode's docstring
        future = executor.submit(decode_colour, bag.reader, raw, conn.msgtype, conn.topic)
        pending.append(_Pending(future, stream, counters[conn.topic], context.calibration(stream.camera, log_ns)))
        counters[conn.topic] += 1
        yield from release(final=False)
    yield from release(final=True)
    for topic, pairer in bag.pairers.items():
        yield from (_with_depth(bag, bag.streams[topic], p) for p in pairer.flush())


def default_workers(workers: int | None) -> int:
    """Decode threads: `workers`, or up to 4 (one per core) when None."""
    return max(1, min(4, os.cpu_count() or 1)) if workers is None else workers


def frames_of(bags: Sequence[OpenedBag], workers: int | None = None) -> Iterator[Frame]:
    """The frames of opened bags, bag after bag (`workers` threads decode compressed images; 0: inline)."""
    workers = default_workers(workers)
    with ThreadPoolExecutor(workers, thread_name_prefix="fin3r-decode") if workers > 0 else Inline() as pool:
        for bag in bags:
            yield from bag_frames(bag, pool, 4 * max(workers, 1))


def iter_bag_frames(
    paths: str | Path | Iterable[str | Path],
    topics: Sequence[str] | None = None,
    *,
    depth_topics: Sequence[str] = (),
    fixed_frame: str | None = None,
    start: float | None = None,
    end: float | None = None,
    workers: int | None = None,
    typestore: Stores | None = None,
    reports: list[ReadReport] | None = None,
) -> Iterator[Frame]:
    """Frames of the image `topics` (default: every colour image topic) of each bag, bag after bag.

    The options are `BagSelection`'s; `workers`: threads decoding compressed images (default: up to 4,
    one per core; 0: the calling thread). `typestore`: definitions for bags that embed none. `reports`:
    receives one `ReadReport` per bag (complete once its frames are exhausted); without it, a damaged
    bag's report is logged as a warning.
    """
    selection = BagSelection(topics, tuple(depth_topics), fixed_frame, start, end)
    own: list[ReadReport] = [] if reports is None else reports
    with open_bags(paths, selection, typestore, own) as bags:
        yield from frames_of(bags, workers)
    for report in own if reports is None else ():
        if report.damaged:
            log.warning("damaged bag: %s", report)
