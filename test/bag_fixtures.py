"""Write real robot logs (rosbag2 MCAP / sqlite3, ROS 1 .bag) from image arrays, for the extraction tests.

The bags hold, per camera `NS`: `NS/image_raw` (rgb8 or bgr8 Image) or `NS/image_raw/compressed` (JPEG
CompressedImage), `NS/camera_info`, and, when poses are given, `/tf` (map -> NS_link, one sample per
`tf_every` images) and `/tf_static` (NS_link -> NS_optical, a fixed non-trivial transform), such that
map -> NS_optical is the given camera-to-world pose at each image stamp; with `depth_mm`, an aligned
`NS/depth/image_raw` (16UC1 millimetres, REP 118) at the colour stamps plus `depth_offset_ns`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import transforms3d
from rosbags.rosbag1 import Writer as Writer1
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin
from rosbags.rosbag2 import Writer as Writer2
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

T0_NS = 1_700_000_000_000_000_000  # first image stamp
PERIOD_NS = 100_000_000  # 10 Hz

# link -> optical: the usual REP 103 optical rotation plus an offset, so the chain is really composed.
STATIC_LINK_TO_OPTICAL = np.array(
    [[0.0, 0.0, 1.0, 0.05], [-1.0, 0.0, 0.0, -0.02], [0.0, -1.0, 0.0, 0.10], [0.0, 0.0, 0.0, 1.0]]
)


@dataclass
class CameraSpec:
    """One camera of a fixture bag: images, intrinsics, optional poses, and how the images are encoded."""

    rgb: np.ndarray  # (N, H, W, 3) uint8
    K: np.ndarray
    poses: np.ndarray | None = None  # (N, 4, 4) camera-to-map, OpenCV axes
    ns: str = "/cam"
    encoding: str = "rgb8"  # rgb8 | bgr8 | jpeg
    distortion: Sequence[float] = (0.1, -0.05, 0.001, 0.002, 0.0)
    stamps_ns: Sequence[int] | None = None
    tf_every: int = 1
    camera_info: bool = True
    broken_jpeg: Sequence[int] = ()  # images whose JPEG payload is cut to its first 200 bytes
    depth_mm: np.ndarray | None = None  # (N, H, W) uint16, written as NS/depth/image_raw
    depth_offset_ns: int = 0

    @property
    def depth_topic(self) -> str:
        return f"{self.ns}/depth/image_raw"

    @property
    def image_topic(self) -> str:
        return f"{self.ns}/image_raw/compressed" if self.encoding == "jpeg" else f"{self.ns}/image_raw"

    def stamps(self) -> list[int]:
        return (
            list(self.stamps_ns)
            if self.stamps_ns is not None
            else [T0_NS + i * PERIOD_NS for i in range(len(self.rgb))]
        )


def _time(ts, ns: int):
    return ts.types["builtin_interfaces/msg/Time"](sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def _header(ts, ns: int, frame_id: str, ros1: bool):
    header_t = ts.types["std_msgs/msg/Header"]
    if ros1:
        return header_t(seq=0, stamp=_time(ts, ns), frame_id=frame_id)
    return header_t(stamp=_time(ts, ns), frame_id=frame_id)


def _image(ts, cam: CameraSpec, i: int, ns: int, ros1: bool):
    rgb = cam.rgb[i]
    header = _header(ts, ns, cam.ns.strip("/") + "_optical", ros1)
    if cam.encoding == "jpeg":
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        assert ok
        data = buf.reshape(-1)[:200] if i in cam.broken_jpeg else buf.reshape(-1)
        return ts.types["sensor_msgs/msg/CompressedImage"](header=header, format="jpeg", data=data)
    pixels = rgb if cam.encoding == "rgb8" else rgb[..., ::-1]
    h, w = rgb.shape[:2]
    data = np.ascontiguousarray(pixels).reshape(-1)
    return ts.types["sensor_msgs/msg/Image"](
        header=header, height=h, width=w, encoding=cam.encoding, is_bigendian=0, step=w * 3, data=data
    )


def _depth(ts, cam: CameraSpec, i: int, ns: int, ros1: bool):
    depth = np.ascontiguousarray(cam.depth_mm[i], dtype="<u2")
    h, w = depth.shape
    header = _header(ts, ns, cam.ns.strip("/") + "_optical", ros1)
    return ts.types["sensor_msgs/msg/Image"](
        header=header,
        height=h,
        width=w,
        encoding="16UC1",
        is_bigendian=0,
        step=w * 2,
        data=depth.view(np.uint8).reshape(-1),
    )


def _camera_info(ts, cam: CameraSpec, ns: int, ros1: bool):
    h, w = cam.rgb.shape[1:3]
    k = np.asarray(cam.K, dtype=np.float64).reshape(-1)
    p = np.hstack([np.asarray(cam.K, dtype=np.float64), np.zeros((3, 1))]).reshape(-1)
    roi = ts.types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    fields = {"d": np.asarray(cam.distortion, dtype=np.float64), "k": k, "r": np.eye(3).reshape(-1), "p": p}
    if ros1:
        fields = {key.upper(): value for key, value in fields.items()}
    return ts.types["sensor_msgs/msg/CameraInfo"](
        header=_header(ts, ns, cam.ns.strip("/") + "_optical", ros1),
        height=h,
        width=w,
        distortion_model="plumb_bob",
        binning_x=0,
        binning_y=0,
        roi=roi,
        **fields,
    )


def _tf(ts, parent: str, child: str, matrix: np.ndarray, ns: int, ros1: bool):
    w, x, y, z = transforms3d.quaternions.mat2quat(matrix[:3, :3])
    t = matrix[:3, 3]
    stamped = ts.types["geometry_msgs/msg/TransformStamped"](
        header=_header(ts, ns, parent, ros1),
        child_frame_id=child,
        transform=ts.types["geometry_msgs/msg/Transform"](
            translation=ts.types["geometry_msgs/msg/Vector3"](x=t[0], y=t[1], z=t[2]),
            rotation=ts.types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w),
        ),
    )
    return ts.types["tf2_msgs/msg/TFMessage"](transforms=[stamped])


def bag_messages(ts, cameras: Sequence[CameraSpec], ros1: bool) -> list[tuple[str, str, int, object]]:
    """(topic, msgtype, log time ns, message) of every message of the fixture, in log-time order."""
    out: list[tuple[str, str, int, object]] = []
    for cam in cameras:
        name = cam.ns.strip("/")
        stamps = cam.stamps()
        image_type = "sensor_msgs/msg/CompressedImage" if cam.encoding == "jpeg" else "sensor_msgs/msg/Image"
        if cam.poses is not None:
            msg = _tf(ts, f"{name}_link", f"{name}_optical", STATIC_LINK_TO_OPTICAL, stamps[0], ros1)
            out.append(("/tf_static", "tf2_msgs/msg/TFMessage", stamps[0] - 1, msg))
        for i, ns in enumerate(stamps):
            if cam.camera_info:
                info = _camera_info(ts, cam, ns, ros1)
                out.append((f"{cam.ns}/camera_info", "sensor_msgs/msg/CameraInfo", ns, info))
            out.append((cam.image_topic, image_type, ns, _image(ts, cam, i, ns, ros1)))
            if cam.depth_mm is not None:
                depth_ns = ns + cam.depth_offset_ns
                out.append((cam.depth_topic, "sensor_msgs/msg/Image", depth_ns, _depth(ts, cam, i, depth_ns, ros1)))
            if cam.poses is not None and (i % cam.tf_every == 0 or i == len(stamps) - 1):
                link = cam.poses[i] @ np.linalg.inv(STATIC_LINK_TO_OPTICAL)
                out.append(("/tf", "tf2_msgs/msg/TFMessage", ns, _tf(ts, "map", f"{name}_link", link, ns, ros1)))
    out.sort(key=lambda m: m[2])
    return out


def write_bag(
    path: Path,
    cameras: Sequence[CameraSpec],
    storage: str = "mcap",
    version: int = 9,
    store: Stores = Stores.ROS2_KILTED,
    ros1_chunk_bytes: int | None = None,
    ros1_compression: str | None = None,
    zstd_chunks: bool = False,
) -> Path:
    """Write a bag at `path` (a rosbag2 directory, or a `.bag` file when `storage == "ros1"`); returns it.

    `ros1_chunk_bytes` / `ros1_compression` ('bz2', 'lz4'): the ROS 1 writer's chunk size and compression.
    `zstd_chunks`: rosbag2 storage compression (rosbags' MCAP writer: zstd chunks of 1 MiB)."""
    path = Path(path)
    ros1 = storage == "ros1"
    ts = get_typestore(Stores.ROS1_NOETIC if ros1 else store)
    if ros1:  # the Noetic store lacks tf2_msgs; the bag embeds this definition
        ts.register(get_types_from_msg("geometry_msgs/TransformStamped[] transforms", "tf2_msgs/msg/TFMessage"))
    messages = bag_messages(ts, cameras, ros1)
    if ros1:
        writer = Writer1(path)
        writer.chunk_threshold = ros1_chunk_bytes or writer.chunk_threshold
        if ros1_compression:
            writer.set_compression(Writer1.CompressionFormat[ros1_compression.upper()])
    else:
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        writer = Writer2(path, version=version, storage_plugin=plugin)
        if zstd_chunks:
            writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    serialize = ts.serialize_ros1 if ros1 else ts.serialize_cdr
    with writer:
        connections: dict[str, object] = {}
        for topic, msgtype, _, _ in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=ts)
        for topic, msgtype, ns, msg in messages:
            writer.write(connections[topic], ns, serialize(msg, msgtype))
    return path


def rigid(poses: np.ndarray) -> np.ndarray:
    """Poses with each rotation projected onto SO(3) (what a TF quaternion can carry), float64."""
    out = np.array(poses, dtype=np.float64)
    u, _, vt = np.linalg.svd(out[..., :3, :3])
    out[..., :3, :3] = u @ vt
    return out


def storage_file(bag: Path) -> Path:
    """The single storage file (.mcap / .db3) inside a rosbag2 directory."""
    (found,) = [p for p in bag.iterdir() if p.suffix in (".mcap", ".db3")]
    return found


def truncate(path: Path, fraction: float) -> int:
    """Cut a file to `fraction` of its size (a crashed recorder); returns the new size in bytes."""
    size = int(path.stat().st_size * fraction)
    with path.open("r+b") as f:
        f.truncate(size)
    return size


def rechunk_mcap(path: Path, compression: str, chunk_size: int = 768 * 1024, by_topic: bool = False) -> Path:
    """Rewrite an MCAP file in place through the `mcap` writer: `compression` ('zstd', 'lz4' or '') chunks that
    close on the message reaching `chunk_size` bytes (768 KiB: the default of rosbag2's MCAP recorder).

    `by_topic`: write the messages topic after topic, so that chunks of different topics overlap in time."""
    from mcap.reader import make_reader
    from mcap.writer import CompressionType, Writer

    with path.open("rb") as f:
        reader = make_reader(f)
        header, summary = reader.get_header(), reader.get_summary()
        messages = [(channel.id, msg) for _, channel, msg in reader.iter_messages(log_time_order=False)]
        if by_topic:
            messages.sort(key=lambda m: summary.channels[m[0]].topic)
        metadata = list(reader.iter_metadata())
    kind = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4, "": CompressionType.NONE}[compression]
    with path.open("wb") as out:
        writer = Writer(out, chunk_size=chunk_size, compression=kind)
        writer.start(header.profile, header.library)
        schemas = {s.id: writer.register_schema(s.name, s.encoding, s.data) for s in summary.schemas.values()}
        channels = {
            c.id: writer.register_channel(c.topic, c.message_encoding, schemas.get(c.schema_id, 0), c.metadata)
            for c in summary.channels.values()
        }
        for cid, msg in messages:
            writer.add_message(channels[cid], msg.log_time, msg.data, msg.publish_time, msg.sequence)
        for m in metadata:
            writer.add_metadata(m.name, m.metadata)
        writer.finish()
    return path
