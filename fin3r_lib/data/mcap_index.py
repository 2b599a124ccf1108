"""Indexed reads of a few topics of an MCAP file through the `mcap` library: only their records, found by the index.

`rosbags` reads whole chunks, and a chunk of a camera log holds images beside the small CameraInfo and TF
messages, so reading those alone through it costs a read (and, in compressed chunks, a decompression) of the
whole file, which the image pass then does again. The MCAP summary (read by `mcap`'s `SeekingReader`) lists
each chunk and where each channel's message index lies; the message index gives each message's offset in the
chunk's records. Uncompressed chunks: the wanted records are read where they are (positioned reads).
Compressed chunks (zstd, lz4: what MCAP writers do by default): the records are decompressed as a stream
only up to the end of the last wanted one; a recorder closes a chunk on the image that fills it, so that
is mostly the small records before the image (zstd blocks of 128 KiB bound what is saved); in rosbags'
writer layout (1 MiB chunks, two images a chunk, TF between) it is about half of each chunk. The image
pass then reads each chunk once more, whole (`mcap_stream`). Measured by benchmarks/bench_extract.py.
Record layouts: https://mcap.dev/spec.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Collection
from pathlib import Path

import lz4.frame
import zstandard
from mcap.data_stream import ReadDataStream
from mcap.exceptions import McapError
from mcap.opcode import Opcode
from mcap.reader import SeekingReader
from mcap.records import ChunkIndex, MessageIndex
from mcap.summary import Summary

from fin3r_lib.data.bag_recovery import MCAP_MAGIC
from fin3r_lib.errors import InputError

_RECORD_HEAD = 9  # opcode (1) and record length (8)
_MESSAGE = struct.Struct("<BQHIQQ")  # opcode, length, channel id, sequence, log time, publish time
MESSAGE_HEAD = _MESSAGE.size  # bytes of a message record before its data
_READ_AHEAD = 4096  # bytes read at an uncompressed message record: the whole of a TF or CameraInfo message


class McapIndexError(InputError):
    """An MCAP file cannot be read through its index: no summary, an unknown compression, or records off their index."""


def records_start(chunk: ChunkIndex) -> int:
    """File offset of a chunk's (possibly compressed) records: after its opcode, length and fixed fields."""
    # start and end time, uncompressed size (8 each), crc (4), compression string (4 + n), records length (8)
    return chunk.chunk_start_offset + _RECORD_HEAD + 28 + 4 + len(chunk.compression.encode()) + 8


def read_exact(f, size: int, offset: int) -> bytes:
    data = os.pread(f.fileno(), size, offset)
    if len(data) != size:
        raise McapIndexError(f"expected {size} bytes at byte {offset}, the file ends after {len(data)}")
    return data


def message_indexes(f, chunk: ChunkIndex, channels: Collection[int]) -> dict[int, list[tuple[int, int]]]:
    """(log time, offset in the chunk's records) of each message of `channels` in `chunk`, from its message index."""
    found = {}
    start = chunk.chunk_start_offset + chunk.chunk_length
    data = read_exact(f, chunk.message_index_length, start)
    for cid in channels:
        at = chunk.message_index_offsets[cid] - start
        stream = ReadDataStream(io.BytesIO(data[at:]))
        if not 0 <= at < len(data) or stream.read1() != Opcode.MESSAGE_INDEX:
            raise McapIndexError(f"expected the message index of channel {cid} at byte {start + at}")
        stream.read8()
        index = MessageIndex.read(stream)
        if index.channel_id != cid:
            raise McapIndexError(f"message index at byte {start + at} is channel {index.channel_id}'s, not {cid}'s")
        found[cid] = index.records
    return found


def message_record(head: bytes, cid: int, log_ns: int, where: str) -> tuple[bytes | None, int]:
    """The data of the message record starting `head` (None when `head` is shorter than it), and its full size.

    Parsed with one struct, not `mcap.records.Message.read`: over a log's TF and CameraInfo messages that
    took 13 of the 20 ms of this pass on the 400-frame benchmark bag (7 % of the raw rosbags read).
    """
    if len(head) < _MESSAGE.size:
        head += b"\0" * (_MESSAGE.size - len(head))  # a record cut before its fixed fields: refused below
    op, length, msg_cid, _, msg_ns, _ = _MESSAGE.unpack_from(head)
    if op != Opcode.MESSAGE or length < _MESSAGE.size - _RECORD_HEAD:
        raise McapIndexError(f"message index entry at {where} does not point to a message record")
    if msg_cid != cid or msg_ns != log_ns:
        raise McapIndexError(f"message index entry at {where} does not point to its message")
    size = _RECORD_HEAD + length
    return (bytes(head[_MESSAGE.size : size]) if len(head) >= size else None), size


class _Slice:
    """A file's bytes [start, start + size) as a stream, read where they lie (positioned reads, on demand)."""

    def __init__(self, f, start: int, size: int) -> None:
        self._fd, self._at, self._end = f.fileno(), start, start + size

    def read(self, size: int = -1) -> bytes:
        """Up to `size` more bytes (all that is left when negative)."""
        size = self._end - self._at if size < 0 else min(size, self._end - self._at)
        data = os.pread(self._fd, size, self._at)
        self._at += len(data)
        return data


class _Records:
    """The records of one compressed chunk, read and decompressed only as far as they are asked for."""

    def __init__(self, f, chunk: ChunkIndex, zstd: zstandard.ZstdDecompressor) -> None:
        """`zstd`: the decompressor, reused over the chunks (making one per chunk costs as much as the reads)."""
        source = _Slice(f, records_start(chunk), chunk.compressed_size)
        if chunk.compression == "zstd":
            self._stream = zstd.stream_reader(source, read_size=1 << 15)
        elif chunk.compression == "lz4":
            self._stream = lz4.frame.LZ4FrameFile(source)
        else:
            raise McapIndexError(f"{chunk.compression!r}-compressed chunk: expected zstd, lz4 or none")
        self._data = bytearray()
        self._size = chunk.uncompressed_size

    def upto(self, end: int) -> memoryview:
        """The records' first `end` bytes (McapIndexError when the chunk holds fewer)."""
        if end > self._size:
            raise McapIndexError(f"expected {end} bytes of records in a chunk of {self._size}")
        while len(self._data) < end:
            block = self._stream.read(min(max(end - len(self._data), 1 << 14), self._size - len(self._data)))
            if not block:
                raise McapIndexError(f"compressed chunk ends after {len(self._data)} of {self._size} bytes")
            self._data += block
        return memoryview(self._data)[:end]


def _chunk_messages(
    f, chunk: ChunkIndex, wanted: dict[int, str], zstd: zstandard.ZstdDecompressor
) -> list[tuple[int, int, str, bytes]]:
    """(log time, offset in the chunk, topic, data) of the messages of the `wanted` channels in `chunk`."""
    indexes = message_indexes(f, chunk, wanted.keys() & chunk.message_index_offsets.keys())
    records = _Records(f, chunk, zstd) if chunk.compression else None
    base = records_start(chunk)
    out = []
    for cid, entries in indexes.items():
        for log_ns, offset in entries:
            where = f"chunk byte {chunk.chunk_start_offset} + {offset}"
            if records is None:
                head = os.pread(f.fileno(), _READ_AHEAD, base + offset)
                data, size = message_record(head, cid, log_ns, where)
                if data is None:
                    data, _ = message_record(read_exact(f, size, base + offset), cid, log_ns, where)
            else:
                data, size = message_record(bytes(records.upto(offset + _MESSAGE.size)[offset:]), cid, log_ns, where)
                if data is None:
                    data, _ = message_record(bytes(records.upto(offset + size)[offset:]), cid, log_ns, where)
            if offset + size > chunk.uncompressed_size:
                raise McapIndexError(f"message index entry at {where} runs past the chunk")
            out.append((log_ns, offset, wanted[cid], data))
    return out


def read_summary(f, path: Path) -> Summary:
    """The summary section of an open MCAP file (McapIndexError when it has none, or no chunk index)."""
    size = os.fstat(f.fileno()).st_size
    if size < 2 * len(MCAP_MAGIC) or read_exact(f, len(MCAP_MAGIC), size - len(MCAP_MAGIC)) != MCAP_MAGIC:
        raise McapIndexError(f"{path}: expected MCAP magic at both ends of the file (a cut file has no summary)")
    summary = SeekingReader(f).get_summary()
    if summary is None or (summary.channels and not summary.chunk_indexes):
        raise McapIndexError(f"{path}: expected an MCAP summary with chunk indexes, found none")
    return summary


def indexed_messages(path: Path, topics: Collection[str]) -> list[tuple[int, str, bytes]]:
    """(log time ns, topic, serialized message) of every message of `topics` in the MCAP file, in log-time order.

    Raises `McapIndexError` when the file has no summary, or its index or records do not read as MCAP.
    """
    try:
        with open(path, "rb") as f:
            summary = read_summary(f, path)
            wanted = {cid: ch.topic for cid, ch in summary.channels.items() if ch.topic in topics}
            found, zstd = [], zstandard.ZstdDecompressor()
            for chunk in summary.chunk_indexes:
                if wanted.keys() & chunk.message_index_offsets.keys():
                    at = chunk.chunk_start_offset
                    found += [(t, at, o, topic, data) for t, o, topic, data in _chunk_messages(f, chunk, wanted, zstd)]
    except McapIndexError:
        raise
    except (McapError, EOFError, ValueError, UnicodeDecodeError, zstandard.ZstdError, RuntimeError) as exc:
        raise McapIndexError(f"{path}: not readable through its MCAP index: {exc}") from exc
    found.sort(key=lambda m: m[:3])  # by log time, then file position (unique)
    return [(t, topic, data) for t, _, _, topic, data in found]


def indexed_log_times(path: Path, topics: Collection[str]) -> list[int]:
    """Log times (ns) of every message of `topics` in the MCAP file, from its message indexes alone (no record read).

    Raises `McapIndexError` as `indexed_messages` does.
    """
    try:
        with open(path, "rb") as f:
            summary = read_summary(f, path)
            wanted = {cid for cid, ch in summary.channels.items() if ch.topic in topics}
            times = []
            for chunk in summary.chunk_indexes:
                for entries in message_indexes(f, chunk, wanted & chunk.message_index_offsets.keys()).values():
                    times += [t for t, _ in entries]
    except McapIndexError:
        raise
    except (McapError, EOFError, ValueError, UnicodeDecodeError) as exc:
        raise McapIndexError(f"{path}: not readable through its MCAP index: {exc}") from exc
    return times
