"""Readable copies of truncated or corrupted rosbag2 sqlite3 files, for `rosbags` to read.

A recorder that crashed leaves a sqlite3 file cut mid-page, which `rosbags` refuses at open. This copies
what is still readable into a new, well-formed file, table by table and each message row by its id, so
rows after an unreadable page are still found. (Cut MCAP files are read in place: `bag_cut_mcap`.)
"""

from __future__ import annotations

import shutil
import sqlite3
import struct
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

MCAP_MAGIC = b"\x89MCAP0\r\n"
_SQLITE_HEADER = b"SQLite format 3\x00"
# Probing message ids stops after this many unreadable ids in a row when the expected count is unknown.
_SQLITE_MAX_MISSES = 1024


@dataclass(frozen=True)
class Recovered:
    """Where the readable part of a storage file ends: `where` in words, for the loss report."""

    path: Path
    where: str


def recover_sqlite3(src: Path, dst: Path, expected: int | None) -> Recovered:
    """Copy every readable row of rosbag2 sqlite3 `src` into a new database `dst` (sqlite3.DatabaseError
    when not even its table list is readable).

    `expected` is the message count from metadata.yaml when known; it bounds the id probing.
    """
    padded = dst.with_suffix(".padded")
    shutil.copyfile(src, padded)
    _pad_to_header_size(padded)
    try:
        with (
            closing(sqlite3.connect(f"file:{padded}?mode=ro", uri=True)) as source,
            closing(sqlite3.connect(dst)) as target,
        ):
            tables = source.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            ).fetchall()
            for name, sql in tables:
                target.execute(sql)
                if name != "messages":
                    _copy_table(source, target, name)
            first_bad = _copy_messages(source, target, expected)
            target.commit()
    finally:
        padded.unlink(missing_ok=True)
    if first_bad is None:
        return Recovered(dst, "no unreadable row")
    unknown = "" if expected is not None else " (the file's message count is unknown)"
    return Recovered(dst, f"message id {first_bad}{unknown}")


def _copy_table(source: sqlite3.Connection, target: sqlite3.Connection, name: str) -> None:
    """Copy a small table (topics, schema, definitions); an unreadable one stays empty."""
    try:
        rows = source.execute(f'SELECT * FROM "{name}"').fetchall()
    except sqlite3.DatabaseError:
        return
    if rows:
        target.executemany(f'INSERT INTO "{name}" VALUES ({",".join("?" * len(rows[0]))})', rows)


def _pad_to_header_size(path: Path) -> None:
    """Zero-fill a cut sqlite3 file to the page count its header states, so sqlite opens it."""
    with path.open("r+b") as f:
        header = f.read(100)
        if len(header) < 100 or not header.startswith(_SQLITE_HEADER):
            return
        (page_size,) = struct.unpack(">H", header[16:18])
        page_size = 65536 if page_size == 1 else page_size
        (pages,) = struct.unpack(">I", header[28:32])
        f.seek(0, 2)
        if f.tell() < pages * page_size:
            f.truncate(pages * page_size)


def _copy_messages(source: sqlite3.Connection, target: sqlite3.Connection, expected: int | None) -> int | None:
    """Copy message rows by id; returns the first id that could not be read (None if none)."""
    first_missing: int | None = None
    misses, msg_id = 0, 0
    while msg_id < expected if expected is not None else misses < _SQLITE_MAX_MISSES:
        msg_id += 1
        try:
            row = source.execute("SELECT * FROM messages WHERE id = ?", (msg_id,)).fetchone()
        except sqlite3.DatabaseError:
            row = None
        if row is None:
            misses += 1
            first_missing = msg_id if first_missing is None else first_missing
            continue
        misses = 0
        target.execute(f"INSERT INTO messages VALUES ({','.join('?' * len(row))})", row)
    return first_missing
