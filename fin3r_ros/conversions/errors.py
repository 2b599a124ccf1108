"""The one exception type the conversions raise for bad input."""

from __future__ import annotations

from fin3r_lib.errors import InputError


class ConversionError(InputError):
    """A message or array cannot be converted; the message says what was expected and what came.

    Subclass of `fin3r_lib.errors.InputError`, hence of `ValueError`.
    """
