"""A readable copy of a cut ROS 1 bag: its complete chunks, re-indexed as `rosbag reindex` does, for `rosbags`.

A ROS 1 bag keeps its index (connection and chunk info records) at its end, written when recording stops;
a crashed recorder leaves the chunks without it, and `rosbags` refuses the file. Each chunk is followed by
one index data record per connection in it (message times and offsets), and holds a connection record
before its first message of each connection. The copy keeps the bytes up to the end of the last chunk that
is complete with its index data records, appends the connection records and one chunk info record per
chunk, and points the bag header at them. Record layout: http://wiki.ros.org/Bags/Format/2.0
"""

from __future__ import annotations

import bz2
import mmap
import struct
from pathlib import Path

import lz4.frame

from fin3r_lib.data.bag_recovery import Recovered
from fin3r_lib.data.bag_report import BagError

MAGIC = b"#ROSBAG V2.0\n"
_OP_MESSAGE, _OP_BAG_HEADER, _OP_INDEX, _OP_CHUNK, _OP_CHUNK_INFO, _OP_CONNECTION = 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
_U32 = struct.Struct("<I")
_INDEX_ENTRY = struct.Struct("<IIi")  # time sec, nsec, offset in the chunk's data
_DECOMPRESS = {"none": bytes, "bz2": bz2.decompress, "lz4": lz4.frame.decompress}


def _fields(header: bytes) -> dict[str, bytes]:
    """The `name=value` fields of a record header."""
    out, pos = {}, 0
    while pos < len(header):
        (n,) = _U32.unpack_from(header, pos)
        name, _, value = header[pos + 4 : pos + 4 + n].partition(b"=")
        out[name.decode()] = value
        pos += 4 + n
    return out


def _records(data: bytes, pos: int = 0):
    """(fields, data start, data end) of each complete record of `data` from `pos` on; stops at an incomplete one."""
    while pos + 4 <= len(data):
        (hlen,) = _U32.unpack_from(data, pos)
        if pos + 8 + hlen > len(data):
            return
        (dlen,) = _U32.unpack_from(data, pos + 4 + hlen)
        start, end = pos + 8 + hlen, pos + 8 + hlen + dlen
        if end > len(data):
            return
        yield _fields(data[pos + 4 : pos + 4 + hlen]), pos, start, end
        pos = end


def _op(fields: dict[str, bytes]) -> int:
    return fields.get("op", b"\xff")[0]


def _field(name: str, value: bytes) -> bytes:
    return _U32.pack(len(name) + 1 + len(value)) + name.encode() + b"=" + value


def _record(fields: list[bytes], data: bytes) -> bytes:
    header = b"".join(fields)
    return _U32.pack(len(header)) + header + _U32.pack(len(data)) + data


def _chunk_info(chunk_pos: int, times: list[int], counts: dict[int, int]) -> bytes:
    start, end = min(times), max(times)
    fields = [
        _field("op", bytes([_OP_CHUNK_INFO])),
        _field("ver", _U32.pack(1)),
        _field("chunk_pos", struct.pack("<Q", chunk_pos)),
        _field("start_time", struct.pack("<II", *divmod(start, 1_000_000_000))),
        _field("end_time", struct.pack("<II", *divmod(end, 1_000_000_000))),
        _field("count", _U32.pack(len(counts))),
    ]
    return _record(fields, b"".join(struct.pack("<II", c, n) for c, n in sorted(counts.items())))


def _chunk(data, pos: int, connections: dict[int, bytes]) -> tuple[bytes, int] | None:
    """The chunk info record of the chunk at `pos` and the end of its index data records, None unless complete.

    Connection records found in the chunk are added to `connections`.
    """
    found = next(_records(data, pos), None)
    if found is None or _op(found[0]) != _OP_CHUNK:
        return None
    fields, _, start, end = found
    compression = fields.get("compression", b"").decode()
    if compression not in _DECOMPRESS:
        return None
    try:
        body = _DECOMPRESS[compression](data[start:end])
    except (OSError, ValueError, RuntimeError):  # damaged inside
        return None
    used = set()
    for inner, at, _, inner_end in _records(body):
        conn = _U32.unpack(inner["conn"])[0]
        if _op(inner) == _OP_CONNECTION:
            connections.setdefault(conn, bytes(body[at:inner_end]))
        elif _op(inner) == _OP_MESSAGE:
            used.add(conn)
    counts: dict[int, int] = {}
    times: list[int] = []
    index_end = end
    for index, _, istart, iend in _records(data, end):
        if _op(index) != _OP_INDEX or len(counts) == len(used):
            break
        counts[_U32.unpack(index["conn"])[0]] = _U32.unpack(index["count"])[0]
        times += [s * 1_000_000_000 + n for s, n, _ in _INDEX_ENTRY.iter_unpack(data[istart:iend])]
        index_end = iend
    if not used or set(counts) != used or not used <= connections.keys():
        return None  # its index data records are cut
    return _chunk_info(pos, times, counts), index_end


def recover_ros1(src: Path, dst: Path) -> Recovered:
    """Copy the complete chunks of cut ROS 1 bag `src` into `dst` with a rebuilt index (BagError when none is)."""
    with src.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        size = len(data)
        head = next(_records(data, len(MAGIC)), None)
        if data[: len(MAGIC)] != MAGIC or head is None or _op(head[0]) != _OP_BAG_HEADER:
            raise BagError(f"cannot read ROS 1 bag {src}: its bag header is cut or damaged ({size} bytes)")
        header_pos, header_end = head[1], head[3]
        connections: dict[int, bytes] = {}
        infos: list[bytes] = []
        good_end = header_end
        while (chunk := _chunk(data, good_end, connections)) is not None:
            infos.append(chunk[0])
            good_end = chunk[1]
        if not infos:
            raise BagError(f"cannot read ROS 1 bag {src}: no complete chunk (the file is cut at byte {size})")
        with dst.open("wb") as out:
            for at in range(0, good_end, 1 << 24):
                out.write(data[at : min(at + (1 << 24), good_end)])
            out.write(b"".join(connections[c] for c in sorted(connections)) + b"".join(infos))
            fields = [
                _field("op", bytes([_OP_BAG_HEADER])),
                _field("index_pos", struct.pack("<Q", good_end)),
                _field("conn_count", _U32.pack(len(connections))),
                _field("chunk_count", _U32.pack(len(infos))),
            ]
            header = b"".join(fields)
            padding = header_end - header_pos - 8 - len(header)  # the bag header record keeps its size
            out.seek(header_pos)
            out.write(_U32.pack(len(header)) + header + _U32.pack(padding) + b" " * padding)
    return Recovered(dst, f"byte offset {good_end} of {size} ({len(infos)} complete chunks kept)")
