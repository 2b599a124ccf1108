"""Messages of some connections of an open bag, stopping (with the loss reported) where a damaged file breaks."""

from __future__ import annotations

import struct
from collections.abc import Iterator

from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag1 import ReaderError as Reader1Error
from rosbags.rosbag2 import ReaderError as Reader2Error

from fin3r_lib.data.bag_report import ReadReport

# What reading a damaged file can raise mid-iteration (rosbags' own errors, short reads, bad lengths).
READ_ERRORS = (AnyReaderError, Reader1Error, Reader2Error, OSError, ValueError, struct.error, EOFError)


def stamp_ns(header) -> int:
    """A message header's stamp in integer nanoseconds (exact)."""
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def read_messages(reader: AnyReader, connections: list, report: ReadReport) -> Iterator[tuple]:
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
        except READ_ERRORS as exc:
            report.stopped_at.append(
                f"message {seen} of {expected} on {sorted({c.topic for c in connections})} ({exc})"
            )
            report.add_lost(expected - seen)
            return
        seen += 1
        yield item
