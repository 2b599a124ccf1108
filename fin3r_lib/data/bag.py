"""Robot logs in: camera frames with calibration and TF poses from rosbag2 (MCAP, sqlite3) and ROS 1 bags.

Reading goes through `rosbags` (`AnyReader`), so no ROS install is needed. Every image of the chosen
`sensor_msgs/Image` and `CompressedImage` topics becomes a `Frame`, paired with the latest `CameraInfo`
of its camera (`NS/camera_info` beside `NS/image_raw` or `NS/image_raw/compressed`) and, when the bag
holds `/tf` and `/tf_static`, with the pose of its optical frame (`header.frame_id`, OpenCV axes by
REP 103) in a fixed frame, interpolated at the image stamp. Two passes: TF and CameraInfo first, then the
images, in bag order. In MCAP files the first pass reads only those records, through the file's index
(`mcap_index`), and parses them straight from CDR (`cdr`); elsewhere it goes through `rosbags` (reading them
together with the images there costs more than a separate pass: see benchmarks/bench_extract.py).
Compressed images decode on a thread pool (OpenCV releases the GIL); raw images are converted in the
reading thread, where threads only added overhead, and may be read-only views of the message buffer.

A bag that `rosbags` cannot open (a crashed recorder's truncated MCAP or sqlite3 file) is read from a
recovered copy of its readable part; each file's `ReadReport` says how many messages were lost and where.
"""

from __future__ import annotations

import bisect
import heapq
import logging
import os
import sqlite3
import struct
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.image import ImageError, message_to_cvimage
from rosbags.rosbag1 import ReaderError as Reader1Error
from rosbags.rosbag2 import Reader as Reader2
from rosbags.rosbag2 import ReaderError as Reader2Error
from rosbags.typesys import Stores, get_typestore

from fin3r_lib.data.bag_recovery import recover_mcap, recover_sqlite3
from fin3r_lib.data.cdr import CdrError, cdr_camera_info, cdr_transforms
from fin3r_lib.data.frame import Frame
from fin3r_lib.data.mcap_index import McapIndexError, indexed_messages
from fin3r_lib.data.tf_buffer import TfBuffer, TfError
from fin3r_lib.errors import InputError

log = logging.getLogger(__name__)

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)
_TF_TOPICS = ("/tf", "/tf_static")
# What reading a damaged file can raise mid-iteration (rosbags' own errors, short reads, bad lengths).
_READ_ERRORS = (AnyReaderError, Reader1Error, Reader2Error, OSError, ValueError, struct.error, EOFError)
_OPEN_ERRORS = (AnyReaderError, Reader1Error, Reader2Error, OSError)


class BagError(InputError):
    """A bag could not be read, or does not hold what was asked of it."""


@dataclass(frozen=True)
class TopicInfo:
    """A topic of a bag: name, message type (`pkg/msg/Name`) and message count."""

    topic: str
    msgtype: str
    count: int


@dataclass
class ReadReport:
    """What reading one bag gave: counts, and where reading stopped when the file is damaged.

    `messages` is what the bag says it holds (None when unknown); `readable` what could be read back;
    `lost` the difference plus messages of the read topics that failed mid-iteration or to decode.
    """

    path: str
    messages: int | None = None
    readable: int = 0
    frames: int = 0
    unposed: int = 0
    outside_range: int = 0
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
        self.lost = None if self.lost is None else self.lost + count


def _typestore(store: Stores | None):
    return get_typestore(store or Stores.LATEST)


def _storage_files(bag: Path) -> tuple[list[Path], dict[Path, int]]:
    """Storage files of a rosbag2 directory and their message counts from metadata.yaml (when present)."""
    try:
        info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        files = [bag / name for name in info["relative_file_paths"]]
        counts = {bag / f["path"]: int(f["message_count"]) for f in info.get("files", []) if "message_count" in f}
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):  # missing or damaged: list the folder
        return sorted(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3")), {}
    return files, counts


def _opens(path: Path) -> bool:
    try:
        with Reader2(path):
            return True
    except (Reader2Error, OSError, ValueError):
        return False


def _recover(path: Path, workdir: Path) -> tuple[list[Path], ReadReport]:
    """Paths for `AnyReader` with recovered copies (in `workdir`) in place of unreadable storage files."""
    report = ReadReport(str(path))
    files, counts = _storage_files(path) if path.is_dir() else ([path], {})
    if len(counts) == len(files) and files:
        report.messages = sum(counts.values())
    readable: list[Path] = []
    for f in files:
        if _opens(f):
            readable.append(f)
            continue
        copy = workdir / f"{len(readable)}_{f.name}"
        if f.suffix == ".mcap":
            recovered = recover_mcap(f, copy)
        elif f.suffix == ".db3":
            try:
                recovered = recover_sqlite3(f, copy, counts.get(f))
            except sqlite3.DatabaseError as exc:
                raise BagError(f"{f}: damaged beyond recovery (not even its table list reads): {exc}") from exc
        else:
            raise BagError(f"{f}: unknown storage format {f.suffix!r}; expected .mcap, .db3 or a ROS 1 .bag")
        report.stopped_at.append(f"{f.name}: {recovered.where}")
        readable.append(recovered.path)
    return readable, report


def _opened(files: list[Path], typestore: Stores | None) -> AnyReader:
    reader = AnyReader(files, default_typestore=_typestore(typestore))
    reader.open()
    return reader


@contextmanager
def open_bag(path: str | Path, typestore: Stores | None = None) -> Iterator[tuple[AnyReader, ReadReport]]:
    """Open one bag (rosbag2 directory, .mcap / .db3 file, or ROS 1 .bag) for reading, recovering a damaged one.

    `typestore` names the message definitions used when the bag embeds none (default: the latest distro).
    """
    path = Path(path)
    if not path.exists():
        raise BagError(f"bag not found: {path} (expected a rosbag2 directory, a .mcap / .db3 file or a .bag file)")
    with tempfile.TemporaryDirectory(prefix="fin3r-bag-") as tmp:
        try:
            reader, report = _opened([path], typestore), ReadReport(str(path))
        except _OPEN_ERRORS as exc:
            if path.suffix == ".bag":
                raise BagError(f"cannot read ROS 1 bag {path}: {exc} (a damaged .bag needs `rosbag reindex`)") from exc
            files, report = _recover(path, Path(tmp))
            try:
                reader = _opened(files, typestore)
            except _OPEN_ERRORS as exc2:
                raise BagError(f"cannot read bag {path}: {exc2}") from exc2
        try:
            report.readable = reader.message_count
            if report.messages is None and not report.stopped_at:
                report.messages = reader.message_count
            report.lost = None if report.messages is None else report.messages - report.readable
            yield reader, report
        finally:
            reader.close()


def _as_paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    return [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]


def list_topics(paths: str | Path | Iterable[str | Path], typestore: Stores | None = None) -> list[TopicInfo]:
    """Topics of one or several bags with their types and message counts (summed over bags), by name."""
    counts: dict[tuple[str, str], int] = {}
    for path in _as_paths(paths):
        with open_bag(path, typestore) as (reader, _):
            for conn in reader.connections:
                key = (conn.topic, conn.msgtype)
                counts[key] = counts.get(key, 0) + conn.msgcount
    return [TopicInfo(t, m, n) for (t, m), n in sorted(counts.items())]


@dataclass(frozen=True)
class _Stream:
    topic: str
    camera: str
    info_topic: str


def camera_namespace(topic: str, msgtype: str) -> str:
    """The camera's namespace of an image topic: `/cam` for `/cam/image_raw` and `/cam/image_raw/compressed`."""
    base = topic[: -len("/compressed")] if msgtype == COMPRESSED_IMAGE and topic.endswith("/compressed") else topic
    return base.rsplit("/", 1)[0]


def _streams(reader: AnyReader, path: Path, topics: Sequence[str] | None) -> dict[str, _Stream]:
    types = {c.topic: c.msgtype for c in reader.connections}
    images = sorted(t for t, m in types.items() if m in IMAGE_TYPES)
    if topics:
        missing = [t for t in topics if t not in images]
        if missing:
            raise BagError(
                f"image topic(s) {missing} not in {path}; image topics present: {images or 'none'}"
                f" (Image or CompressedImage; all topics: {sorted(types)})"
            )
        chosen = list(topics)
    else:  # every colour stream once: no depth, no /compressed twin of a raw topic
        chosen = [
            t
            for t in images
            if "depth" not in t.lower() and not (t.endswith("/compressed") and t[: -len("/compressed")] in images)
        ]
        if not chosen:
            raise BagError(f"no camera image topic in {path}; image topics present: {images or 'none'}")
    spaces = {t: camera_namespace(t, types[t]) for t in chosen}
    names = list(spaces.values())
    return {
        t: _Stream(t, (ns if names.count(ns) == 1 else t).strip("/") or "camera", f"{ns}/camera_info")
        for t, ns in spaces.items()
    }


@dataclass(frozen=True)
class _Calibration:
    K: np.ndarray | None
    distortion: np.ndarray | None


def _calibration(reader: AnyReader, raw: bytes, msgtype: str) -> _Calibration:
    """K and distortion of a serialized CameraInfo (straight from CDR in ROS 2 bags); K None if all zero."""
    try:
        k, d = cdr_camera_info(raw) if reader.is2 else (None, None)
    except CdrError as exc:
        log.debug("CameraInfo through rosbags: %s", exc)
        k = None
    if k is None:
        msg = reader.deserialize(raw, msgtype)  # ROS 2 lower-case or ROS 1 upper-case fields
        k = np.asarray(msg.k if hasattr(msg, "k") else msg.K, dtype=np.float64).reshape(3, 3)
        d = np.array(msg.d if hasattr(msg, "d") else msg.D, dtype=np.float64)
    return _Calibration(None if not k.any() else k, d)


def _stamp(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


@dataclass
class _Decoded:
    stamp: float
    frame_id: str
    rgb: np.ndarray | None
    error: str = ""


def _decode(reader: AnyReader, raw: bytes, msgtype: str, topic: str) -> _Decoded:
    """Deserialize an image message and convert it to RGB uint8 (runs on the decode pool)."""
    msg = reader.deserialize(raw, msgtype)
    try:
        rgb = message_to_cvimage(msg, "rgb8")
    except ImageError as exc:
        encoding = getattr(msg, "encoding", getattr(msg, "format", "?"))
        raise BagError(f"{topic}: cannot convert {encoding!r} images to RGB ({exc})") from exc
    except (AssertionError, ValueError, TypeError, cv2.error) as exc:  # a corrupted compressed payload
        return _Decoded(_stamp(msg.header), msg.header.frame_id, None, f"{topic}: undecodable image: {exc}")
    if rgb.dtype != np.uint8 or rgb.ndim != 3:
        raise BagError(f"{topic}: expected a colour uint8 image, got {rgb.dtype} {rgb.shape}")
    return _Decoded(_stamp(msg.header), msg.header.frame_id, rgb)


class _Ready:
    """The outcome of a task already run: the part of `Future` that `_bag_frames` uses, without its lock."""

    __slots__ = ("_error", "_value")

    def __init__(self, value=None, error: Exception | None = None) -> None:
        self._value, self._error = value, error

    def done(self) -> bool:
        return True

    def result(self):
        if self._error is not None:
            raise self._error
        return self._value


class _Inline:
    """Executor stand-in that runs each task at once in the calling thread."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def submit(self, fn, *args) -> _Ready:
        try:
            return _Ready(fn(*args))
        except Exception as exc:
            return _Ready(error=exc)


def _messages(reader: AnyReader, connections: list, report: ReadReport) -> Iterator[tuple]:
    """`reader.messages(connections)`, stopping (and reporting the loss) where a damaged file breaks."""
    if not connections:  # rosbags reads every topic when given none
        return
    expected, seen = sum(c.msgcount for c in connections), 0
    messages = reader.messages(connections=connections)
    while True:
        try:
            item = next(messages)
        except StopIteration:
            return
        except _READ_ERRORS as exc:
            report.stopped_at.append(
                f"message {seen} of {expected} on {sorted({c.topic for c in connections})} ({exc})"
            )
            report.add_lost(expected - seen)
            return
        seen += 1
        yield item


@dataclass
class _Context:
    """What the images are paired with: the whole TF tree and each camera's CameraInfo changes."""

    tf: TfBuffer = field(default_factory=TfBuffer)
    info_times: dict[str, list[int]] = field(default_factory=dict)  # camera -> log times of changes
    infos: dict[str, list[_Calibration]] = field(default_factory=dict)

    def calibration(self, camera: str, log_ns: int) -> _Calibration | None:
        """The latest CameraInfo at `log_ns`, or the first one when the image precedes them all."""
        times = self.info_times.get(camera)
        if not times:
            return None
        return self.infos[camera][max(0, bisect.bisect_right(times, log_ns) - 1)]


def _mcap_files(reader: AnyReader) -> list[Path] | None:
    """The storage files behind `reader` when every one is MCAP, else None.

    A rosbag2 directory's files are listed, not taken from metadata.yaml (parsing it again costs more
    than the index read): a stray file shows as a message count other than the metadata's.
    """
    files = [f for p in reader.paths for f in (sorted(p.iterdir()) if p.is_dir() else [p]) if f.suffix != ".yaml"]
    return files if files and all(f.suffix == ".mcap" for f in files) else None


def _context_messages(reader: AnyReader, wanted: list, report: ReadReport) -> Iterable[tuple[str, str, int, bytes]]:
    """(topic, msgtype, log time, raw) of the `wanted` connections, in log-time order.

    MCAP files are read through their index (only these records; `rosbags` would read every chunk, images
    included); files without a usable index, other formats, and damaged files go through `rosbags`.
    """
    types = {c.topic: c.msgtype for c in wanted}
    files = _mcap_files(reader)
    if files and not any(c.topic in types and c not in wanted for c in reader.connections):
        try:
            found = heapq.merge(*(indexed_messages(f, types.keys()) for f in files), key=lambda m: m[0])
            messages = [(topic, types[topic], t, raw) for t, topic, raw in found]
        except (McapIndexError, OSError) as exc:
            log.debug("reading %s through rosbags: %s", reader.paths, exc)
        else:
            if len(messages) == sum(c.msgcount for c in wanted):
                return messages
            log.debug("MCAP index of %s lists %d of the messages; reading through rosbags", reader.paths, len(messages))
    return ((c.topic, c.msgtype, t, raw) for c, t, raw in _messages(reader, wanted, report))


def _add_tf(tf: TfBuffer, reader: AnyReader, raw: bytes, msgtype: str, static: bool) -> None:
    """Record a TFMessage: read straight from CDR in ROS 2 bags, through rosbags otherwise."""
    if reader.is2:
        try:
            transforms = cdr_transforms(raw)
        except CdrError as exc:
            log.debug("TF message through rosbags: %s", exc)
        else:
            for parent, child, stamp, translation, quaternion in transforms:
                tf.add(parent, child, stamp, translation, quaternion, static)
            return
    tf.add_message(reader.deserialize(raw, msgtype), static)


def _read_context(reader: AnyReader, streams: dict[str, _Stream], report: ReadReport) -> _Context:
    """First pass: TF and CameraInfo messages (small; through the MCAP index when there is one)."""
    by_info = {s.info_topic: s.camera for s in streams.values()}
    wanted = [
        c
        for c in reader.connections
        if (c.topic in by_info and c.msgtype == CAMERA_INFO) or (c.topic in _TF_TOPICS and c.msgtype == TF_MESSAGE)
    ]
    context = _Context()
    tails: dict[str, bytes] = {}  # CameraInfo bytes after the stamp (CDR and ROS 1 alike), per topic
    for topic, msgtype, log_ns, raw in _context_messages(reader, wanted, report):
        if topic in by_info and raw[12:] == tails.get(topic):
            continue  # the same CameraInfo again: only the header stamp (and ROS 1 seq) changed
        try:
            if topic in _TF_TOPICS:
                _add_tf(context.tf, reader, raw, msgtype, static=topic == "/tf_static")
                continue
            calibration = _calibration(reader, raw, msgtype)
        except (AnyReaderError, TfError) as exc:
            report.add_lost(1)
            report.errors.append(f"{topic}: undecodable message: {exc}")
        else:
            camera = by_info[topic]
            context.info_times.setdefault(camera, []).append(log_ns)
            context.infos.setdefault(camera, []).append(calibration)
            tails[topic] = bytes(raw[12:])
    return context


def _pose(context: _Context, fixed_frame: str | None, frame_id: str, stamp: float, report: ReadReport):
    """Camera-to-fixed pose of the optical frame `frame_id` at `stamp`, or None (noted in the report)."""
    if not context.tf.frames:
        return None
    try:
        return context.tf.lookup(fixed_frame or context.tf.root(frame_id), frame_id, stamp)
    except TfError as exc:
        report.unposed += 1
        if len(report.errors) < 5:
            report.errors.append(f"no pose: {exc}")
        return None


@dataclass
class _Pending:
    future: Future | _Ready
    stream: _Stream
    index: int
    calibration: _Calibration | None


def _bag_frames(
    reader: AnyReader,
    report: ReadReport,
    path: Path,
    topics: Sequence[str] | None,
    fixed_frame: str | None,
    time_range: tuple[float | None, float | None],
    pool: ThreadPoolExecutor | _Inline,
    max_pending: int,
) -> Iterator[Frame]:
    streams = _streams(reader, path, topics)
    context = _read_context(reader, streams, report)
    if fixed_frame and context.tf.frames and fixed_frame.lstrip("/") not in context.tf.frames:
        raise BagError(
            f"fixed frame {fixed_frame!r} is not in the TF tree of {path}; frames: {sorted(context.tf.frames)}"
        )
    t0 = reader.start_time
    lo = None if time_range[0] is None else t0 + int(time_range[0] * 1e9)
    hi = None if time_range[1] is None else t0 + int(time_range[1] * 1e9)
    inline = _Inline()
    counters = dict.fromkeys(streams, 0)
    pending: deque[_Pending] = deque()

    def release(final: bool) -> Iterator[Frame]:
        while pending and (final or pending[0].future.done() or len(pending) > max_pending):
            item = pending.popleft()
            decoded: _Decoded = item.future.result()
            if decoded.rgb is None:
                report.add_lost(1)
                report.errors.append(decoded.error)
                continue
            report.frames += 1
            calibration = item.calibration
            yield Frame(
                rgb=decoded.rgb,
                stamp=decoded.stamp,
                camera=item.stream.camera,
                frame_id=decoded.frame_id,
                intrinsics=None if calibration is None else calibration.K,
                distortion=None if calibration is None else calibration.distortion,
                cam_to_world=_pose(context, fixed_frame, decoded.frame_id, decoded.stamp, report),
                index=item.index,
            )

    images = [c for c in reader.connections if c.topic in streams]
    for conn, log_ns, raw in _messages(reader, images, report):
        if (lo is not None and log_ns < lo) or (hi is not None and log_ns > hi):
            report.outside_range += 1
            continue
        stream = streams[conn.topic]
        executor = pool if conn.msgtype == COMPRESSED_IMAGE else inline  # see the module docstring
        future = executor.submit(_decode, reader, raw, conn.msgtype, conn.topic)
        pending.append(_Pending(future, stream, counters[conn.topic], context.calibration(stream.camera, log_ns)))
        counters[conn.topic] += 1
        yield from release(final=False)
    yield from release(final=True)


def iter_bag_frames(
    paths: str | Path | Iterable[str | Path],
    topics: Sequence[str] | None = None,
    *,
    fixed_frame: str | None = None,
    start: float | None = None,
    end: float | None = None,
    workers: int | None = None,
    typestore: Stores | None = None,
    reports: list[ReadReport] | None = None,
) -> Iterator[Frame]:
    """Frames of the image `topics` (default: every colour image topic) of each bag, bag after bag.

    `fixed_frame`: frame the poses are expressed in (default: the root of the camera's TF tree).
    `start` / `end`: seconds from the start of each bag (log time); images outside are skipped undecoded.
    `workers`: threads decoding compressed images (default: up to 4, one per core; 0: the calling thread).
    `typestore`: definitions for bags that embed none. `reports`: receives one `ReadReport` per bag
    (appended as the bag is opened, complete once its frames are exhausted).
    """
    workers = max(1, min(4, os.cpu_count() or 1)) if workers is None else workers
    with ThreadPoolExecutor(workers, thread_name_prefix="fin3r-decode") if workers > 0 else _Inline() as pool:
        for path in _as_paths(paths):
            with open_bag(path, typestore) as (reader, report):
                if reports is not None:
                    reports.append(report)
                yield from _bag_frames(
                    reader, report, path, topics, fixed_frame, (start, end), pool, 4 * max(workers, 1)
                )
            if report.damaged:
                log.warning("damaged bag: %s", report)
