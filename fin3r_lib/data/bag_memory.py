"""Large read buffers from the heap: glibc's allocator hands each one of 1-2 MiB back to the system and faults
it in again otherwise, which doubled the cost of decompressing MCAP chunks.

glibc serves allocations above its mmap threshold (128 KiB at start) with mmap, and raises the threshold to
the size of an mmap'd block when one is freed (up to 32 MiB on 64-bit). Until some large block has been
freed, every chunk that `rosbags` or `mcap_stream` decompresses is a fresh mmap. Measured on a cut
rosbag2 MCAP of 266 640x480 rgb8 frames in 1 MiB zstd chunks: listing its topics 1.10-1.46 s -> 0.56-0.60 s,
reading its frames 2.80-3.08 s -> 1.57-1.70 s. Other allocators are unaffected by this.
"""

from __future__ import annotations

_BLOCK = 16 << 20  # above rosbags' 1 MiB and rosbag2's 768 KiB chunks, with room for larger ones
_done = False


def prefer_heap_for_read_buffers() -> None:
    """Once per process: allocate and free one 16 MiB block, so that glibc keeps chunk-sized buffers in the heap."""
    global _done
    if not _done:
        block = bytearray(_BLOCK)
        del block
        _done = True
