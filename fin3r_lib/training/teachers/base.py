"""The teacher interface: frames in, geometry a student is distilled towards out.

A teacher returns raw geometry per frame on the frame's own pixel grid; turning it into a pseudo-label
(z-shift removal for affine-invariant teachers, DUSt3R normalization) is the training code's job, so
every teacher is converted the same way.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fin3r_lib.data.frame import Frame
from fin3r_lib.errors import InputError

#: teacher name -> module defining `build(**options) -> Teacher`, imported on first use
TEACHERS: dict[str, str] = {
    "moge": "fin3r_lib.training.teachers.moge",
    "sensor": "fin3r_lib.training.teachers.sensor",
}


@dataclass
class TeacherOutput:
    """What a teacher says about one frame, on that frame's pixel grid (H, W of `frame.rgb`).

    `depth` is z-depth (float32, NaN where invalid), `mask` the valid pixels. `metric` is True when
    depth is in metres (sensor, MoGe-2); False when it is known only up to scale and, before the
    teacher's own recovery, shift (MoGe-1). `points` (H, W, 3) camera-frame points (OpenCV axes) and
    `intrinsics` (3x3) when the teacher has them.
    """

    depth: np.ndarray
    mask: np.ndarray
    metric: bool
    points: np.ndarray | None = None
    intrinsics: np.ndarray | None = None


class Teacher(ABC):
    """A source of pseudo-labels; `identity()` goes into the label cache's manifest."""

    #: registry name (a key of TEACHERS)
    name: str = ""

    @abstractmethod
    def label(self, frames: Sequence[Frame]) -> list[TeacherOutput]:
        """One output per frame, in order."""

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """What makes two label sets comparable: teacher name, variant, weights hash, settings, version."""


def build_teacher(name: str, **options: Any) -> Teacher:
    """The teacher registered as `name`, built with `options`; InputError lists the known names."""
    if name not in TEACHERS:
        raise InputError(f"unknown teacher {name!r}; expected one of: {', '.join(sorted(TEACHERS))}")
    return importlib.import_module(TEACHERS[name]).build(**options)
