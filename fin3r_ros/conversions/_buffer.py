"""Raw bytes of messages <-> numpy, with one copy at most (message `uint8[]` fields are `array.array('B')`)."""

from __future__ import annotations

import array
import sys
from typing import TypeVar

import numpy as np

HOST_BIGENDIAN = sys.byteorder == "big"
_CHECKS_ON = {"check_fields": True}
M = TypeVar("M")


def to_byte_array(values: np.ndarray) -> array.array:
    """Bytes of `values` (made C-contiguous) copied once into the `array.array('B')` a message's uint8[] field holds."""
    out = array.array("B")
    out.frombytes(memoryview(np.ascontiguousarray(values).reshape(-1)).cast("B"))  # reshape: empty arrays too
    return out


def zeroed_byte_array(size: int) -> tuple[array.array, np.ndarray]:
    """A zero-filled `array.array('B')` of `size` bytes and a writable uint8 view of it, to fill in place."""
    storage = array.array("B", b"\0") * size
    return storage, np.frombuffer(storage, dtype=np.uint8)


def new_message(cls: type[M], data: array.array, **fields: object) -> M:
    """A message of type `cls` whose `data` field is `data` itself, not a copy.

    The generated setters keep an `array.array('B')` as it is only when field checks are on; since Jazzy
    they are off unless the constructor gets `check_fields=True` (earlier releases always check).
    """
    msg = cls(**fields, **_CHECKS_ON) if "_check_fields" in cls.__slots__ else cls(**fields)
    msg.data = data
    return msg


def message_bytes(data: object) -> np.ndarray:
    """A message's `uint8[]` field (array.array, bytes, list) as a flat uint8 array (a view where possible)."""
    if isinstance(data, list):
        return np.asarray(data, dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8)
