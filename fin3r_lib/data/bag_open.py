"""Opening robot logs: a rosbag2 directory, a .mcap / .db3 file or a ROS 1 .bag, checked before `rosbags` reads it.

What is not a bag (an image folder, a video, an empty or garbage file) is refused with what was expected
and what was found, naming the user's path. A rosbag2 storage file that `rosbags` cannot open (a crashed
recorder's truncated MCAP or sqlite3 file) is read up to where it is cut: an MCAP file in place
(`bag_cut_mcap`), a sqlite3 file from a recovered copy of its readable rows (`bag_recovery`); a cut ROS 1
bag from a re-indexed copy of its complete chunks (`ros1_recovery`);
the `ReadReport` says how many messages were lost (unknown for ROS 1, whose count was in the lost index)
and where reading stopped.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag1 import ReaderError as Reader1Error
from rosbags.rosbag2 import Reader as Reader2
from rosbags.rosbag2 import ReaderError as Reader2Error
from rosbags.typesys import Stores, get_typestore

from fin3r_lib.data.bag_cut_mcap import cut_mcap_reader, readable_end
from fin3r_lib.data.bag_memory import prefer_heap_for_read_buffers
from fin3r_lib.data.bag_recovery import MCAP_MAGIC, recover_sqlite3
from fin3r_lib.data.bag_report import BagError, ReadReport
from fin3r_lib.data.ros1_recovery import recover_ros1

OPEN_ERRORS = (AnyReaderError, Reader1Error, Reader2Error, OSError)
STORAGE_SUFFIXES = (".mcap", ".db3")
EXPECTED = "a rosbag2 directory (metadata.yaml with .mcap / .db3 files), a .mcap / .db3 file or a ROS 1 .bag file"
# The first bytes of each storage format, and its name in messages.
_MAGIC = {
    ".mcap": (MCAP_MAGIC, "MCAP"),
    ".db3": (b"SQLite format 3\x00", "sqlite3"),
    ".bag": (b"#ROSBAG V2.0\n", "ROS 1"),
}


@dataclass(frozen=True)
class TopicInfo:
    """A topic of a bag: name, message type (`pkg/msg/Name`) and message count."""

    topic: str
    msgtype: str
    count: int


def as_paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """One path or several, as a list of `Path`."""
    return [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]


def _found(folder: Path) -> str:
    """A few words on what a folder holds (for the error of a folder that is not a bag)."""
    files = sorted(p for p in folder.iterdir() if p.is_file())
    suffixes = sorted({p.suffix.lower() or "suffix-less" for p in files})
    return f"a folder of {len(files)} files ({', '.join(suffixes[:6]) or 'none'})" if files else "an empty folder"


def check_storage_file(path: Path) -> None:
    """BagError unless `path` starts like the storage format its suffix names (empty, garbage, other file)."""
    suffix = path.suffix.lower()
    if suffix not in _MAGIC:
        raise BagError(f"{path}: expected {EXPECTED}, found a {suffix or 'suffix-less'} file")
    magic, name = _MAGIC[suffix]
    with path.open("rb") as f:
        head = f.read(len(magic))
    if not head:
        raise BagError(f"{path}: empty file (0 bytes); expected a {name} bag")
    if head != magic:
        raise BagError(f"not a valid {name} bag: {path}: expected {magic!r} at byte 0, found {head!r}")


def storage_files(bag: Path) -> tuple[list[Path], dict[Path, int]]:
    """Storage files of a rosbag2 directory and their message counts from metadata.yaml (when present)."""
    try:
        info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        files = [bag / name for name in info["relative_file_paths"]]
        counts = {bag / f["path"]: int(f["message_count"]) for f in info.get("files", []) if "message_count" in f}
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):  # missing or damaged: list the folder
        return sorted(p for p in bag.iterdir() if p.suffix in STORAGE_SUFFIXES), {}
    return files, counts


def check_bag_path(path: Path) -> None:
    """BagError saying what was expected and found unless `path` looks like a bag (contents not yet read)."""
    if not path.exists():
        raise BagError(f"bag not found: {path} (expected {EXPECTED})")
    if not path.is_dir():
        check_storage_file(path)
        return
    files, _ = storage_files(path)
    if not files:
        raise BagError(f"{path}: expected {EXPECTED}, found {_found(path)}")
    for f in files:
        if f.exists():
            check_storage_file(f)


def _opens(path: Path) -> bool:
    try:
        with Reader2(path):
            return True
    except (Reader2Error, OSError, ValueError):
        return False


class _Workdir:
    """A temporary folder for recovered copies, made on first use (a healthy bag or a cut MCAP file needs none)."""

    def __init__(self, stack: ExitStack) -> None:
        self._stack, self._path = stack, None

    def __call__(self) -> Path:
        if self._path is None:
            self._path = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="fin3r-bag-")))
        return self._path


def _recover(path: Path, workdir: _Workdir) -> tuple[list[Path], dict[Path, int], ReadReport]:
    """Paths for `AnyReader` in place of unreadable storage files: cut MCAP files themselves, with the byte
    where their readable part ends (read in place), recovered copies (in `workdir`) of sqlite3 files."""
    report = ReadReport(str(path))
    files, counts = storage_files(path) if path.is_dir() else ([path], {})
    if len(counts) == len(files) and files:
        report.messages = sum(counts.values())
    readable: list[Path] = []
    cut: dict[Path, int] = {}
    for f in files:
        if _opens(f):
            readable.append(f)
            continue
        if f.suffix == ".mcap":
            _, end = readable_end(f)
            report.stopped_at.append(f"{f.name}: byte offset {end} of {f.stat().st_size}")
            if end:  # else cut inside its header: nothing of it is readable
                readable.append(f)
                cut[f] = end
            continue
        try:
            recovered = recover_sqlite3(f, workdir() / f"{len(readable)}_{f.name}", counts.get(f))
        except sqlite3.DatabaseError as exc:
            raise BagError(f"not a valid sqlite3 bag: {f}: not even its table list reads ({exc})") from exc
        report.stopped_at.append(f"{f.name}: {recovered.where}")
        readable.append(recovered.path)
    return readable, cut, report


def _opened(files: list[Path], typestore: Stores | None, cut: dict[Path, int] | None = None) -> AnyReader:
    """`AnyReader` of `files`, open; those in `cut` read up to the byte given, in place (`bag_cut_mcap`)."""
    reader = AnyReader(files, default_typestore=get_typestore(typestore or Stores.LATEST))
    for sub in reader.readers:
        if cut and sub.path in cut:
            sub.storage = cut_mcap_reader(sub.path, cut[sub.path])
    reader.open()
    return reader


def _recover_ros1(path: Path, workdir: _Workdir, exc: Exception) -> tuple[list[Path], ReadReport]:
    """A re-indexed copy (in `workdir`) of the complete chunks of a ROS 1 bag that `rosbags` cannot open."""
    try:
        recovered = recover_ros1(path, workdir() / path.name)
    except BagError as err:
        raise BagError(f"{err}; rosbags: {exc}") from exc
    report = ReadReport(str(path))  # the message count was in the lost index: what is lost is unknown
    report.stopped_at.append(f"{path.name}: {recovered.where}")
    return [recovered.path], report


@contextmanager
def open_bag(path: str | Path, typestore: Stores | None = None) -> Iterator[tuple[AnyReader, ReadReport]]:
    """Open one bag (rosbag2 directory, .mcap / .db3 file, or ROS 1 .bag) for reading, recovering a damaged one.

    `typestore` names the message definitions used when the bag embeds none (default: the latest distro).
    """
    path = Path(path)
    check_bag_path(path)
    prefer_heap_for_read_buffers()
    with ExitStack() as stack:
        workdir = _Workdir(stack)
        try:
            reader, report = _opened([path], typestore), ReadReport(str(path))
        except OPEN_ERRORS as exc:
            cut: dict[Path, int] = {}
            if path.suffix == ".bag":
                files, report = _recover_ros1(path, workdir, exc)
            else:
                files, cut, report = _recover(path, workdir)
            nothing = BagError(
                f"cannot read bag {path}: it is cut before its first complete record of messages"
                f" (stopped at {', '.join(report.stopped_at)}); nothing is readable"
            )
            if not files:
                raise nothing from exc
            try:
                reader = _opened(files, typestore, cut)
            except OPEN_ERRORS as exc2:
                raise BagError(f"cannot read bag {path}: its readable part does not open ({exc2})") from exc2
            if reader.message_count == 0:
                reader.close()
                raise nothing from exc
        try:
            report.readable = reader.message_count
            if report.messages is None and not report.stopped_at:
                report.messages = reader.message_count
            report.lost = None if report.messages is None else report.messages - report.readable
            yield reader, report
        finally:
            reader.close()


def list_topics(paths: str | Path | Iterable[str | Path], typestore: Stores | None = None) -> list[TopicInfo]:
    """Topics of one or several bags with their types and message counts (summed over bags), by name."""
    counts: dict[tuple[str, str], int] = {}
    for path in as_paths(paths):
        with open_bag(path, typestore) as (reader, _):
            for conn in reader.connections:
                key = (conn.topic, conn.msgtype)
                counts[key] = counts.get(key, 0) + conn.msgcount
    return [TopicInfo(t, m, n) for (t, m), n in sorted(counts.items())]
