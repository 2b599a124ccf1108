"""Raw bytes of messages <-> numpy, with one copy at most (message `uint8[]` fields are `array.array('B')`)."""

from __future__ import annotations

import array
import sys

import numpy as np

HOST_BIGENDIAN = sys.byteorder == "big"


def to_byte_array(values: np.ndarray) -> array.array:
    """Bytes of `values` (made C-contiguous) as the `array.array('B')` a message data field takes without a check."""
    out = array.array("B")
    out.frombytes(memoryview(np.ascontiguousarray(values)).cast("B"))
    return out


def message_bytes(data: object) -> np.ndarray:
    """A message's `uint8[]` field (array.array, bytes, list) as a flat uint8 array (a view where possible)."""
    if isinstance(data, list):
        return np.asarray(data, dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8)
