"""A cut MCAP file read in place: `rosbags` reads the readable part of the file itself, nothing is copied.

A recorder that crashed leaves an MCAP file without its summary and footer, which `rosbags` refuses at
open. `readable_end` finds where the complete data records end (the first record cut short, or one that
is not a data record); `cut_mcap_reader` gives `rosbags` an MCAP reader whose file reads the original
bytes up to there and then a data-end record and a footer without summary (what a writer closing without
an index writes), so `rosbags` finds the records by scanning them, straight from the original file.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

from rosbags.rosbag2.storage_mcap import McapReader

from fin3r_lib.data.bag_recovery import MCAP_MAGIC

# Records allowed in an MCAP data section: schema, channel, message, chunk, message index, attachment, metadata.
_DATA_OPS = {0x03, 0x04, 0x05, 0x06, 0x07, 0x09, 0x0C}
_HEAD = struct.Struct("<BQ")  # a record's opcode and length
# After the readable records: a data end record (no CRC), a footer without summary, the closing magic.
_TAIL = bytes([0x0F]) + struct.pack("<QI", 4, 0) + bytes([0x02]) + struct.pack("<QQQI", 20, 0, 0, 0) + MCAP_MAGIC


def readable_end(path: Path) -> tuple[int, int]:
    """(end of the header record, end of the last complete data record) of the MCAP file `path`, in bytes;
    (0, 0) when its magic or header record is cut or unreadable."""
    with path.open("rb") as f:
        fd, size = f.fileno(), os.fstat(f.fileno()).st_size
        head = os.pread(fd, len(MCAP_MAGIC) + _HEAD.size, 0)
        if len(head) < len(MCAP_MAGIC) + _HEAD.size or not head.startswith(MCAP_MAGIC):
            return 0, 0
        op, length = _HEAD.unpack_from(head, len(MCAP_MAGIC))
        start = end = len(MCAP_MAGIC) + _HEAD.size + length
        if op != 0x01 or start > size:
            return 0, 0
        while end + _HEAD.size <= size:
            op, length = _HEAD.unpack(os.pread(fd, _HEAD.size, end))
            if op not in _DATA_OPS or end + _HEAD.size + length > size:
                break
            end += _HEAD.size + length
    return start, end


class _CutFile(io.RawIOBase):
    """Bytes [0, end) of a file followed by `_TAIL`, as a read-only seekable file."""

    def __init__(self, path: Path, end: int) -> None:
        super().__init__()
        self._file = path.open("rb")
        self._end, self._size, self._pos = end, end + len(_TAIL), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise OSError(f"seek to {base + offset}, before the start of the file")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes from the position (all that is left when negative), in one positioned read."""
        size = self._size - self._pos if size < 0 else max(0, min(size, self._size - self._pos))
        data = (
            os.pread(self._file.fileno(), min(size, self._end - self._pos), self._pos) if self._pos < self._end else b""
        )
        if len(data) < size:  # the part in the footer written after the readable records
            at = self._pos + len(data) - self._end
            data += _TAIL[at : at + size - len(data)]
        self._pos += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._file.close()
        super().close()


class _CutPath:
    """What `rosbags`' MCAP reader takes as its path: opening it gives the cut file's readable part."""

    def __init__(self, path: Path, end: int) -> None:
        self.path, self.end = path, end

    def open(self, mode: str = "rb") -> _CutFile:
        """The readable part of the file followed by a footer (`mode` must be 'rb')."""
        if mode != "rb":
            raise ValueError(f"a cut MCAP file opens for reading ('rb'), not {mode!r}")
        return _CutFile(self.path, self.end)  # unbuffered: each read is one pread, as large as asked

    def __str__(self) -> str:
        return str(self.path)


def cut_mcap_reader(path: Path, end: int) -> McapReader:
    """A `rosbags` MCAP storage reader (not yet open) of the records of `path` before byte `end`, read in place."""
    return McapReader(_CutPath(path, end))
