"""Every message of some topics of an MCAP file, in the order `rosbags` gives them, each chunk decompressed once.

The image pass of an extraction: `rosbags` decompresses each chunk and copies every record out of it, and
the context pass (`mcap_index`) has already decompressed the start of each chunk for its TF and CameraInfo
records; in rosbags' own writer layout (1 MiB zstd chunks, two images a chunk with TF between them) the
two passes together decompress each chunk one and a half times. Here the message indexes list the wanted
records; a chunk is decompressed in one call when its first wanted message is due, kept while messages of
it are still to come (at most `max_chunks` at once: the least recently used is dropped, and decompressed
again if needed, which only chunks overlapping in time ask for), and the messages are views of it.
Not `mcap`'s own `SeekingReader.iter_messages` (same order): it parses and copies every record of a chunk;
with CRC checks it took 0.81 s for the 400 rgb8 images of the benchmark bag in rosbags' layout where this
takes 0.64 s, which with the context pass would be 0.74 of the raw rosbags read, under the 0.8 target.
benchmarks/bench_extract.py, rosbags' zstd layout, 640x480 rgb8, loaded 2-core machine, 3 runs:
iter_bag_frames / raw rosbags read + decode 0.80-0.95 (workers=0), 0.70-0.84 (1 or 4 workers);
before this pass (images through rosbags): 0.57-0.70.
"""

from __future__ import annotations

import struct
import zlib
from collections import Counter, OrderedDict
from collections.abc import Collection, Iterator
from pathlib import Path

import lz4.frame
import zstandard
from mcap.exceptions import McapError
from mcap.records import ChunkIndex

from fin3r_lib.data.mcap_index import (
    MESSAGE_HEAD,
    McapIndexError,
    message_indexes,
    message_record,
    read_exact,
    read_summary,
    records_start,
)

_CRC_AT = 9 + 24  # a chunk's uncompressed-records CRC: after its opcode, length, start and end time, size
_READ_ERRORS = (McapError, EOFError, ValueError, UnicodeDecodeError, zstandard.ZstdError, RuntimeError, struct.error)


def _records(f, chunk: ChunkIndex, zstd: zstandard.ZstdDecompressor) -> memoryview:
    """A chunk's records, decompressed and checked against the chunk's size and CRC (as `rosbags` checks)."""
    raw = read_exact(f, chunk.chunk_length, chunk.chunk_start_offset)
    start = records_start(chunk) - chunk.chunk_start_offset
    (crc,) = struct.unpack_from("<I", raw, _CRC_AT)
    packed = memoryview(raw)[start : start + chunk.compressed_size]
    if chunk.compression == "zstd":
        records = zstd.decompress(packed, max_output_size=chunk.uncompressed_size)
    elif chunk.compression == "lz4":
        records = lz4.frame.decompress(packed)
    elif not chunk.compression:
        records = packed
    else:
        raise McapIndexError(f"{chunk.compression!r}-compressed chunk: expected zstd, lz4 or none")
    where = f"chunk at byte {chunk.chunk_start_offset}"
    if len(records) != chunk.uncompressed_size:
        raise McapIndexError(f"{where}: expected {chunk.uncompressed_size} bytes of records, got {len(records)}")
    if crc and zlib.crc32(records) != crc:
        raise McapIndexError(f"{where}: its records do not match their CRC (a damaged chunk)")
    return memoryview(records)


class IndexedStream:
    """The messages of `topics` in the MCAP file `path`: listed from its index when made (`len`), read when
    iterated, as (log time ns, topic, data), data a read-only view of the decompressed chunk.

    Order: `rosbags`' (log time, then the chunk's place in the file, then the record's place in the chunk).
    Raises `McapIndexError` (also while iterating) when the index or the records do not read as MCAP.
    """

    def __init__(self, path: Path, topics: Collection[str], max_chunks: int = 2) -> None:
        self.path, self.max_chunks = Path(path), max(1, max_chunks)
        try:
            with open(self.path, "rb") as f:
                summary = read_summary(f, self.path)
                self._topics = {cid: ch.topic for cid, ch in summary.channels.items() if ch.topic in topics}
                wanted = self._topics.keys()
                self._chunks = [c for c in summary.chunk_indexes if wanted & c.message_index_offsets.keys()]
                entries = []
                for n, chunk in enumerate(self._chunks):
                    found = message_indexes(f, chunk, wanted & chunk.message_index_offsets.keys())
                    for cid, records in found.items():
                        entries += [(t, chunk.chunk_start_offset, offset, n, cid) for t, offset in records]
        except McapIndexError:
            raise
        except (McapError, EOFError, ValueError, UnicodeDecodeError) as exc:
            raise McapIndexError(f"{self.path}: not readable through its MCAP index: {exc}") from exc
        entries.sort()
        self._entries = entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[tuple[int, str, memoryview]]:
        left = Counter(n for *_, n, _ in self._entries)
        cache: OrderedDict[int, memoryview] = OrderedDict()
        zstd = zstandard.ZstdDecompressor()
        with open(self.path, "rb") as f:
            for log_ns, _, offset, n, cid in self._entries:
                chunk = self._chunks[n]
                where = f"chunk byte {chunk.chunk_start_offset} + {offset}"
                try:
                    records = cache.get(n)
                    if records is None:
                        records = cache[n] = _records(f, chunk, zstd)
                        if len(cache) > self.max_chunks:
                            cache.popitem(last=False)
                    cache.move_to_end(n)
                    _, size = message_record(bytes(records[offset : offset + MESSAGE_HEAD]), cid, log_ns, where)
                except McapIndexError:
                    raise
                except _READ_ERRORS as exc:
                    raise McapIndexError(f"{self.path}: {where}: {exc}") from exc
                if offset + size > len(records):
                    raise McapIndexError(f"{self.path}: message index entry at {where} runs past the chunk")
                left[n] -= 1
                if not left[n]:
                    cache.pop(n)
                yield log_ns, self._topics[cid], records[offset + MESSAGE_HEAD : offset + size]
