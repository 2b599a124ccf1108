"""Indexed reads of a few topics of an MCAP file: only their records, found through the summary's indexes.

`rosbags` reads whole chunks, and a chunk of a camera log holds images beside the small CameraInfo and TF
messages, so reading those alone through it costs a read of the whole file. The MCAP summary lists each
chunk (chunk index records) and, per chunk, where each channel's message index lies; with uncompressed
chunks the wanted message records can be read where they are (positioned reads: cheaper than mapping the
file, whose pages would each be faulted in). Record layouts: https://mcap.dev/spec.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Collection
from pathlib import Path

from fin3r_lib.errors import InputError

MAGIC = b"\x89MCAP0\r\n"
_OP_FOOTER, _OP_MESSAGE, _OP_CHANNEL, _OP_MESSAGE_INDEX, _OP_CHUNK_INDEX = 0x02, 0x05, 0x04, 0x07, 0x08
_RECORD = struct.Struct("<BQ")  # opcode, body length
_FOOTER = struct.Struct("<BQQQ")  # opcode, length, summary start, summary offset start (then a crc)
_FOOTER_SIZE = _RECORD.size + 20
_CHANNEL = struct.Struct("<HHI")  # id, schema id, topic length
_CHUNK_INDEX = struct.Struct("<16xQQI")  # chunk start, chunk length, byte length of the message index offsets
_INDEX_OFFSET = struct.Struct("<HQ")  # channel id, message index offset
_CHUNK_INDEX_TAIL = struct.Struct("<QI")  # message index length, compression length
_CHUNK_SIZES = struct.Struct("<QQ")  # compressed size, uncompressed size (after the compression)
_MESSAGE_INDEX = struct.Struct("<BQHI")  # opcode, length, channel id, byte length of the entries
_INDEX_ENTRY = struct.Struct("<QQ")  # log time, offset in the chunk's records
_MESSAGE = struct.Struct("<BQHIQ")  # opcode, length, channel id, sequence, log time
_MESSAGE_HEAD_SIZE = _RECORD.size + 22  # up to the data: channel id, sequence, log time, publish time
_READ_AHEAD = 4096  # bytes read at a message record: the whole of a TF or CameraInfo message


class McapIndexError(InputError):
    """An MCAP file cannot be read through its index: no summary, compressed chunks, or records off their index."""


class _Chunk:
    """Where a chunk's records and message indexes lie, from its chunk index record."""

    __slots__ = ("compression", "index", "index_length", "offsets", "records", "records_length")

    def __init__(self, summary: bytes, body: int) -> None:
        start, length, map_len = _CHUNK_INDEX.unpack_from(summary, body)
        p = body + _CHUNK_INDEX.size
        self.offsets = dict(_INDEX_OFFSET.unpack_from(summary, q) for q in range(p, p + map_len, _INDEX_OFFSET.size))
        self.index_length, compression_len = _CHUNK_INDEX_TAIL.unpack_from(summary, p + map_len)
        p += map_len + _CHUNK_INDEX_TAIL.size
        self.compression = summary[p : p + compression_len]
        _, self.records_length = _CHUNK_SIZES.unpack_from(summary, p + compression_len)
        self.index = start + length  # the message index records follow the chunk
        # chunk record: opcode, length, start and end time, uncompressed size, crc, compression, records length
        self.records = start + _RECORD.size + 32 + compression_len + 8


def _read(fd: int, size: int, offset: int) -> bytes:
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise McapIndexError(f"expected {size} bytes at byte {offset}, the file ends after {len(data)}")
    return data


def _summary(fd: int) -> tuple[dict[int, str], list[_Chunk]]:
    """Topic of each channel id, and each chunk, from the summary section."""
    size = os.fstat(fd).st_size
    tail_size = _FOOTER_SIZE + len(MAGIC)
    if size < len(MAGIC) + tail_size:
        raise McapIndexError(f"expected an MCAP file, got {size} bytes")
    tail = _read(fd, tail_size, size - tail_size)
    if _read(fd, len(MAGIC), 0) != MAGIC or tail[-len(MAGIC) :] != MAGIC:
        raise McapIndexError("expected MCAP magic at both ends of the file")
    op, _, summary_start, summary_offsets_start = _FOOTER.unpack_from(tail)
    if op != _OP_FOOTER or not summary_start:
        raise McapIndexError(f"expected a footer pointing to a summary, got opcode {op:#x}, summary at {summary_start}")
    summary = _read(fd, (summary_offsets_start or size - tail_size) - summary_start, summary_start)
    channels: dict[int, str] = {}
    chunks: list[_Chunk] = []
    pos = 0
    while pos < len(summary):
        op, length = _RECORD.unpack_from(summary, pos)
        body = pos + _RECORD.size
        if op == _OP_CHANNEL:
            cid, _, topic_len = _CHANNEL.unpack_from(summary, body)
            channels[cid] = summary[body + _CHANNEL.size : body + _CHANNEL.size + topic_len].decode()
        elif op == _OP_CHUNK_INDEX:
            chunks.append(_Chunk(summary, body))
        pos = body + length
    return channels, chunks


def _chunk_messages(fd: int, chunk: _Chunk, indexes: bytes, cid: int) -> list[tuple[int, int, bytes]]:
    """(log time, file offset, data) of the messages of channel `cid` in `chunk`, through its message index."""
    at = chunk.offsets[cid] - chunk.index
    op, _, index_cid, entries_len = _MESSAGE_INDEX.unpack_from(indexes, at) if at >= 0 else (None, 0, None, 0)
    if op != _OP_MESSAGE_INDEX or index_cid != cid:
        raise McapIndexError(f"expected the message index of channel {cid} at byte {chunk.offsets[cid]}")
    out = []
    at += _MESSAGE_INDEX.size
    for log_ns, offset in _INDEX_ENTRY.iter_unpack(indexes[at : at + entries_len]):
        rec = chunk.records + offset
        data = os.pread(fd, _READ_AHEAD, rec)
        op, length, msg_cid, _, msg_ns = _MESSAGE.unpack_from(data)
        if (
            op != _OP_MESSAGE
            or msg_cid != cid
            or msg_ns != log_ns
            or offset + _RECORD.size + length > chunk.records_length
        ):
            raise McapIndexError(f"message index entry at chunk offset {offset} does not point to its message")
        if _RECORD.size + length > len(data):
            data = _read(fd, _RECORD.size + length, rec)
        out.append((log_ns, rec, data[_MESSAGE_HEAD_SIZE : _RECORD.size + length]))
    return out


def indexed_messages(path: Path, topics: Collection[str]) -> list[tuple[int, str, bytes]]:
    """(log time ns, topic, serialized message) of every message of `topics` in the MCAP file, in log-time order.

    Raises `McapIndexError` when the file has no summary or a chunk holding these topics is compressed.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        channels, chunks = _summary(fd)
        wanted = {cid: topic for cid, topic in channels.items() if topic in topics}
        found: list[tuple[int, int, str, bytes]] = []
        for chunk in chunks:
            cids = wanted.keys() & chunk.offsets.keys()
            if not cids:
                continue
            if chunk.compression:
                raise McapIndexError(f"{chunk.compression.decode(errors='replace')!r}-compressed chunk")
            indexes = _read(fd, chunk.index_length, chunk.index)
            for cid in cids:
                found.extend((t, rec, wanted[cid], data) for t, rec, data in _chunk_messages(fd, chunk, indexes, cid))
    except (struct.error, UnicodeDecodeError) as exc:
        raise McapIndexError(f"{path}: malformed summary or index: {exc}") from exc
    finally:
        os.close(fd)
    found.sort()  # by log time, then file position (unique, so the data is never compared)
    return [(t, topic, data) for t, _, topic, data in found]
