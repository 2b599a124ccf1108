"""The `sensor` teacher: the robot's own aligned depth images (`Frame.depth`), metric, holes masked.

An RGB-D camera measures what MoGe only estimates; on a robot with one this is often the best teacher
there is. Holes (0 or NaN, as depth drivers write them) and readings outside [min_depth, max_depth]
are masked out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from fin3r_lib.data.frame import Frame
from fin3r_lib.errors import InputError
from fin3r_lib.training.teachers.base import Teacher, TeacherOutput

#: bumped when the labels this teacher produces change
VERSION = 1


class SensorTeacher(Teacher):
    """Depth from the frame itself; `min_depth` < valid <= `max_depth` metres."""

    name = "sensor"

    def __init__(self, min_depth: float = 0.0, max_depth: float = math.inf) -> None:
        if not (0.0 <= min_depth < max_depth):
            raise InputError(f"sensor teacher: expected 0 <= min_depth < max_depth, got {min_depth} and {max_depth}")
        self.min_depth = float(min_depth)
        self.max_depth = float(max_depth)

    def label_one(self, frame: Frame) -> TeacherOutput:
        """The frame's depth as a teacher output; InputError when it has none or it does not match the image."""
        where = frame.source or f"frame {frame.index}"
        if frame.depth is None:
            raise InputError(
                f"sensor teacher: {where} has no depth image (record RGB-D with `fin3r extract --depth-topic`)"
            )
        depth = np.asarray(frame.depth, dtype=np.float32)
        if depth.shape != frame.rgb.shape[:2]:
            raise InputError(
                f"sensor teacher: {where}: expected depth of size {frame.rgb.shape[:2]}, got {depth.shape}"
            )
        with np.errstate(invalid="ignore"):
            mask = np.isfinite(depth) & (depth > self.min_depth) & (depth <= self.max_depth)
        return TeacherOutput(
            depth=np.where(mask, depth, np.float32(np.nan)),
            mask=mask,
            metric=True,
            intrinsics=None if frame.intrinsics is None else np.asarray(frame.intrinsics, np.float64),
        )

    def label(self, frames: Sequence[Frame]) -> list[TeacherOutput]:
        """One output per frame (see `label_one`)."""
        return [self.label_one(f) for f in frames]

    def identity(self) -> dict[str, Any]:
        """No weights: the identity is the masking range and the version."""
        return {
            "teacher": self.name,
            "variant": "frame-depth",
            "weights_hash": "none",
            "min_depth": self.min_depth,
            "max_depth": "inf" if math.isinf(self.max_depth) else self.max_depth,
            "version": VERSION,
        }


def build(min_depth: float = 0.0, max_depth: float = math.inf) -> SensorTeacher:
    """The registry's constructor (`build_teacher("sensor", ...)`)."""
    return SensorTeacher(min_depth=min_depth, max_depth=max_depth)
