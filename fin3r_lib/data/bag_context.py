"""The first pass over a bag: its TF tree and each camera's CameraInfo changes, what images are paired with.

In MCAP files this pass reads only those records, through the file's index (`mcap_index`), and parses
them straight from CDR (`cdr`); elsewhere it goes through `rosbags` (reading them together with the
images there costs more than a separate pass: see benchmarks/bench_extract.py).
"""

from __future__ import annotations

import bisect
import heapq
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError

from fin3r_lib.data.bag_messages import mcap_files, read_messages
from fin3r_lib.data.bag_report import ReadReport
from fin3r_lib.data.bag_topics import CAMERA_INFO, TF_MESSAGE, TF_TOPICS, CameraStream
from fin3r_lib.data.cdr import CdrError, cdr_camera_info, cdr_transforms
from fin3r_lib.data.mcap_index import McapIndexError, indexed_messages
from fin3r_lib.data.tf_buffer import TfBuffer, TfError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Calibration:
    """K (None when the CameraInfo's K is all zero) and distortion coefficients of a CameraInfo."""

    K: np.ndarray | None
    distortion: np.ndarray | None


@dataclass
class Context:
    """What the images are paired with: the whole TF tree and each camera's CameraInfo changes."""

    tf: TfBuffer = field(default_factory=TfBuffer)
    info_times: dict[str, list[int]] = field(default_factory=dict)  # camera -> log times of changes
    infos: dict[str, list[Calibration]] = field(default_factory=dict)

    def calibration(self, camera: str, log_ns: int) -> Calibration | None:
        """The latest CameraInfo at `log_ns`, or the first one when the image precedes them all."""
        times = self.info_times.get(camera)
        if not times:
            return None
        return self.infos[camera][max(0, bisect.bisect_right(times, log_ns) - 1)]


def _calibration(reader: AnyReader, raw: bytes, msgtype: str) -> Calibration:
    """K and distortion of a serialized CameraInfo (straight from CDR in ROS 2 bags); K None if all zero."""
    try:
        k, d = cdr_camera_info(raw) if reader.is2 else (None, None)
    except CdrError as exc:
        log.debug("CameraInfo through rosbags: %s", exc)
        k = None
    if k is None:
        msg = reader.deserialize(raw, msgtype)  # ROS 2 lower-case or ROS 1 upper-case fields
        k = np.asarray(msg.k if hasattr(msg, "k") else msg.K, dtype=np.float64).reshape(3, 3)
        d = np.array(msg.d if hasattr(msg, "d") else msg.D, dtype=np.float64)
    return Calibration(None if not k.any() else k, d)


def _context_messages(reader: AnyReader, wanted: list, report: ReadReport) -> Iterable[tuple[str, str, int, bytes]]:
    """(topic, msgtype, log time, raw) of the `wanted` connections, in log-time order.

    MCAP files are read through their index (only these records; `rosbags` would read every chunk, images
    included); files without a usable index, other formats, and damaged files go through `rosbags`.
    """
    types = {c.topic: c.msgtype for c in wanted}
    files = mcap_files(reader)
    if files and not any(c.topic in types and c not in wanted for c in reader.connections):
        try:
            found = heapq.merge(*(indexed_messages(f, types.keys()) for f in files), key=lambda m: m[0])
            messages = [(topic, types[topic], t, raw) for t, topic, raw in found]
        except (McapIndexError, OSError) as exc:
            log.debug("reading %s through rosbags: %s", reader.paths, exc)
        else:
            if len(messages) == sum(c.msgcount for c in wanted):
                return messages
            log.debug("MCAP index of %s lists %d of the messages; reading through rosbags", reader.paths, len(messages))
    return ((c.topic, c.msgtype, t, raw) for c, t, raw in read_messages(reader, wanted, report))


def _add_tf(tf: TfBuffer, reader: AnyReader, raw: bytes, msgtype: str, static: bool) -> None:
    """Record a TFMessage: read straight from CDR in ROS 2 bags, through rosbags otherwise.

    Stamps go into the `TfBuffer` as float seconds (its interface), converted as image stamps are.
    """
    if reader.is2:
        try:
            transforms = cdr_transforms(raw)
        except CdrError as exc:
            log.debug("TF message through rosbags: %s", exc)
        else:
            for parent, child, stamp, translation, quaternion in transforms:
                tf.add(parent, child, stamp * 1e-9, translation, quaternion, static)
            return
    tf.add_message(reader.deserialize(raw, msgtype), static)


def read_context(reader: AnyReader, streams: dict[str, CameraStream], report: ReadReport) -> Context:
    """First pass: TF and CameraInfo messages (small; through the MCAP index when there is one)."""
    by_info = {s.info_topic: s.camera for s in streams.values()}
    wanted = [
        c
        for c in reader.connections
        if (c.topic in by_info and c.msgtype == CAMERA_INFO) or (c.topic in TF_TOPICS and c.msgtype == TF_MESSAGE)
    ]
    context = Context()
    tails: dict[str, bytes] = {}  # CameraInfo bytes after the stamp (CDR and ROS 1 alike), per topic
    for topic, msgtype, log_ns, raw in _context_messages(reader, wanted, report):
        if topic in by_info and raw[12:] == tails.get(topic):
            continue  # the same CameraInfo again: only the header stamp (and ROS 1 seq) changed
        try:
            if topic in TF_TOPICS:
                _add_tf(context.tf, reader, raw, msgtype, static=topic == "/tf_static")
                continue
            calibration = _calibration(reader, raw, msgtype)
        except (AnyReaderError, TfError) as exc:
            report.add_lost(1)
            report.errors.append(f"{topic}: undecodable message: {exc}")
        else:
            camera = by_info[topic]
            context.info_times.setdefault(camera, []).append(log_ns)
            context.infos.setdefault(camera, []).append(calibration)
            tails[topic] = bytes(raw[12:])
    return context
