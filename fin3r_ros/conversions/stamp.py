"""builtin_interfaces/Time <-> float seconds, rounded exactly (integer nanoseconds, no float error on the way)."""

from __future__ import annotations

import math
from fractions import Fraction

from builtin_interfaces.msg import Time

from .errors import ConversionError

_NS = 10**9
_SEC_RANGE = (-(2**31), 2**31 - 1)  # builtin_interfaces/Time.sec is int32


def stamp_to_seconds(stamp: Time) -> float:
    """Seconds of a stamp: the float nearest to sec + nanosec / 1e9."""
    return float(Fraction(stamp.sec * _NS + stamp.nanosec, _NS))


def seconds_to_stamp(seconds: float) -> Time:
    """Stamp of float seconds: the nanosecond nearest to the float's exact value; 0 <= nanosec < 1e9."""
    if not math.isfinite(seconds):
        raise ConversionError(f"seconds_to_stamp: expected finite seconds, got {seconds}")
    sec, nanosec = divmod(round(Fraction(seconds) * _NS), _NS)
    if not _SEC_RANGE[0] <= sec <= _SEC_RANGE[1]:
        raise ConversionError(f"seconds_to_stamp: expected seconds within int32 range {_SEC_RANGE}, got {seconds}")
    return Time(sec=sec, nanosec=nanosec)


def stamp_to_ns(stamp: Time) -> int:
    """Integer nanoseconds of a stamp (exact)."""
    return stamp.sec * _NS + stamp.nanosec


def ns_to_stamp(ns: int) -> Time:
    """Stamp of integer nanoseconds (exact); 0 <= nanosec < 1e9."""
    sec, nanosec = divmod(int(ns), _NS)
    if not _SEC_RANGE[0] <= sec <= _SEC_RANGE[1]:
        raise ConversionError(f"ns_to_stamp: expected nanoseconds within int32 seconds {_SEC_RANGE}, got {ns}")
    return Time(sec=sec, nanosec=nanosec)
