"""When a bag's chosen image topics have messages: their first and last log time, to check a time window against.

MCAP files: from the message indexes alone (`mcap_index.indexed_log_times`, no record read); other formats
and files without a usable index: by reading those topics through `rosbags` (only when a window is given).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

from rosbags.highlevel import AnyReader

from fin3r_lib.data.bag_messages import mcap_files, read_messages
from fin3r_lib.data.bag_report import ReadReport
from fin3r_lib.data.mcap_index import McapIndexError, indexed_log_times

log = logging.getLogger(__name__)


def topic_log_range(reader: AnyReader, path: Path, topics: Collection[str]) -> tuple[int, int] | None:
    """First and last log time (ns) of the messages of `topics` in the open bag, None when there are none."""
    connections = [c for c in reader.connections if c.topic in topics]
    files = mcap_files(reader)
    times: list[int] | None = None
    if files:
        try:
            times = [t for f in files for t in indexed_log_times(f, topics)]
        except (McapIndexError, OSError) as exc:
            log.debug("log times of %s through rosbags: %s", path, exc)
        if times is not None and len(times) != sum(c.msgcount for c in connections):
            times = None  # a file that the bag does not list, or an index that misses messages
    if times is None:  # a throwaway report: the frame pass reports this bag's damage, once
        times = [t for _, t, _ in read_messages(reader, connections, ReadReport(str(path)))]
    return (min(times), max(times)) if times else None
