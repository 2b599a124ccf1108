"""Which topics of a bag are read: the colour image streams, their CameraInfo and optional aligned depth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rosbags.highlevel import AnyReader

from fin3r_lib.data.bag_report import BagError

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)
TF_TOPICS = ("/tf", "/tf_static")


@dataclass(frozen=True)
class CameraStream:
    """A colour image topic, the camera name its frames get, its CameraInfo topic and its depth topic (or None)."""

    topic: str
    camera: str
    info_topic: str
    depth_topic: str | None = None


def camera_namespace(topic: str, msgtype: str) -> str:
    """The camera's namespace of an image topic: `/cam` for `/cam/image_raw` and `/cam/image_raw/compressed`."""
    base = topic[: -len("/compressed")] if msgtype == COMPRESSED_IMAGE and topic.endswith("/compressed") else topic
    return base.rsplit("/", 1)[0]


def _colour_topics(types: dict[str, str], path: Path, topics: Sequence[str] | None) -> list[str]:
    images = sorted(t for t, m in types.items() if m in IMAGE_TYPES)
    if topics:
        missing = [t for t in topics if t not in images]
        if missing:
            raise BagError(
                f"image topic(s) {missing} not in {path}; image topics present: {images or 'none'}"
                f" (Image or CompressedImage; all topics: {sorted(types)})"
            )
        return list(topics)
    chosen = [  # every colour stream once: no depth, no /compressed twin of a raw topic
        t
        for t in images
        if "depth" not in t.lower() and not (t.endswith("/compressed") and t[: -len("/compressed")] in images)
    ]
    if not chosen:
        raise BagError(f"no camera image topic in {path}; image topics present: {images or 'none'}")
    return chosen


def _depth_topics(types: dict[str, str], path: Path, colour: list[str], depth: Sequence[str]) -> list[str | None]:
    if not depth:
        return [None] * len(colour)
    if len(depth) != len(colour):
        raise BagError(f"expected one depth topic per colour topic ({colour}), in the same order, got {list(depth)}")
    wrong = [t for t in depth if types.get(t) != IMAGE]
    if wrong:
        present = sorted(t for t, m in types.items() if m == IMAGE)
        raise BagError(
            f"depth topic(s) {wrong} are not sensor_msgs/msg/Image topics of {path}; Image topics: {present}"
        )
    return list(depth)


def choose_streams(
    reader: AnyReader, path: Path, topics: Sequence[str] | None, depth_topics: Sequence[str] = ()
) -> dict[str, CameraStream]:
    """The colour streams to read (default: every colour image topic), by topic; BagError naming what is present.

    `depth_topics`: one depth Image topic per colour stream, in order, aligned to it (same size, same stamps).
    """
    types = {c.topic: c.msgtype for c in reader.connections}
    colour = _colour_topics(types, path, topics)
    depth = _depth_topics(types, path, colour, depth_topics)
    spaces = {t: camera_namespace(t, types[t]) for t in colour}
    names = list(spaces.values())
    return {
        t: CameraStream(t, (ns if names.count(ns) == 1 else t).strip("/") or "camera", f"{ns}/camera_info", d)
        for (t, ns), d in zip(spaces.items(), depth, strict=True)
    }
