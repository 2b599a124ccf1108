"""Messages of some connections of an open bag, stopping (with the loss reported) where a damaged file breaks.

MCAP files with an index are read through it (`mcap_stream`: each chunk decompressed once, no record copied),
everything else through `rosbags`; both give the same messages in the same order.
"""

from __future__ import annotations

import heapq
import logging
import struct
from collections.abc import Iterator
from pathlib import Path

from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag1 import ReaderError as Reader1Error
from rosbags.rosbag2 import Reader as Reader2
from rosbags.rosbag2 import ReaderError as Reader2Error
from rosbags.rosbag2 import storage_mcap
from rosbags.rosbag2.storage_mcap import McapReader

from fin3r_lib.data.bag_report import ReadReport
from fin3r_lib.data.mcap_index import McapIndexError
from fin3r_lib.data.mcap_stream import IndexedStream

log = logging.getLogger(__name__)

# What reading a damaged file can raise mid-iteration: rosbags' own errors, short reads, bad lengths, and the
# error of rosbags' zstd module (compression.zstd or its backport), which it lets through from a corrupted chunk.
READ_ERRORS = (
    AnyReaderError,
    Reader1Error,
    Reader2Error,
    OSError,
    ValueError,
    struct.error,
    EOFError,
    storage_mcap.zstd.ZstdError,
)


def stamp_ns(header) -> int:
    """A message header's stamp in integer nanoseconds (exact)."""
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def _mcap_groups(reader: AnyReader) -> list[list[Path]] | None:
    """The storage files behind each bag of the open `reader` when every one is an MCAP file whose records are
    the messages as recorded (not compressed one by one), else None; in the order `rosbags` reads them: a
    bag's files one after the other, the bags ordered as `AnyReader.messages` merges them (by the id of the
    object owning their connections, which breaks ties between messages of equal log time)."""
    groups: list[tuple[int, list[Path]]] = []
    for sub in reader.readers:
        storage = getattr(sub, "storage", None)
        if not isinstance(sub, Reader2) or getattr(storage.metadata, "compression_mode", None):
            return None
        parts = getattr(storage, "storages", [storage])
        if not all(isinstance(p, McapReader) and isinstance(p.path, Path) for p in parts):
            return None
        groups.append((id(storage), [p.path for p in parts]))
    return [files for _, files in sorted(groups, key=lambda g: g[0])] or None


def mcap_files(reader: AnyReader) -> list[Path] | None:
    """Every storage file behind the open `reader` when all are MCAP files readable through their index, else None."""
    groups = _mcap_groups(reader)
    return None if groups is None else [f for files in groups for f in files]


def _indexed(reader: AnyReader, connections: list) -> Iterator[tuple] | None:
    """The messages of `connections` through the MCAP index of each file, or None when that cannot give them
    all (not MCAP, no index, a topic on several connections, or counts that differ from the bag's).

    Order as `rosbags`: a bag's files one after the other, several bags merged by log time (heapq.merge)."""
    groups = _mcap_groups(reader)
    by_topic = {c.topic: c for c in connections}
    if not groups or any(by_topic.get(c.topic) not in (None, c) for c in reader.connections):
        return None
    try:
        streams = [[IndexedStream(f, by_topic.keys()) for f in files] for files in groups]
    except (McapIndexError, OSError) as exc:
        log.debug("reading %s through rosbags: %s", reader.paths, exc)
        return None
    if sum(len(s) for files in streams for s in files) != sum(c.msgcount for c in connections):
        log.debug("the MCAP index of %s lists other messages than the bag; reading through rosbags", reader.paths)
        return None
    bags = [((by_topic[topic], t, data) for s in files for t, topic, data in s) for files in streams]
    return heapq.merge(*bags, key=lambda m: m[1])


def read_messages(reader: AnyReader, connections: list, report: ReadReport) -> Iterator[tuple]:
    """(connection, log time ns, data) of `connections`, as `reader.messages(connections)` gives them, stopping (and
    reporting the loss) where a damaged file breaks. Data: bytes, or a read-only view of an MCAP chunk."""
    if not connections:  # rosbags reads every topic when given none
        return
    expected, seen = sum(c.msgcount for c in connections), 0
    messages = _indexed(reader, connections) or reader.messages(connections=connections)
    while True:
        try:
            item = next(messages)
        except StopIteration:
            return
        except READ_ERRORS as exc:
            report.stopped_at.append(
                f"message {seen} of {expected} on {sorted({c.topic for c in connections})} ({exc})"
            )
            report.add_lost(expected - seen)
            return
        seen += 1
        yield item
