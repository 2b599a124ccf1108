"""sensor_msgs/PointCloud2 <-> numpy: xyz FLOAT32, packed rgb (r << 16 | g << 8 | b as FLOAT32), extra float fields."""

from __future__ import annotations

import cv2
import numpy as np
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from . import _compat
from ._buffer import HOST_BIGENDIAN, new_message, zeroed_byte_array
from .errors import ConversionError

_DATATYPES = {
    PointField.INT8: np.dtype(np.int8),
    PointField.UINT8: np.dtype(np.uint8),
    PointField.INT16: np.dtype(np.int16),
    PointField.UINT16: np.dtype(np.uint16),
    PointField.INT32: np.dtype(np.int32),
    PointField.UINT32: np.dtype(np.uint32),
    PointField.FLOAT32: np.dtype(np.float32),
    PointField.FLOAT64: np.dtype(np.float64),
}
_LAYOUTS = ("pcl", "compact")
_RGB_NAMES = ("rgb", "rgba")
_XYZ = ("x", "y", "z")


def _float_fields(layout: str, has_rgb: bool, extra: list[str]) -> tuple[list[PointField], int]:
    """PointFields (all FLOAT32) and point_step for x, y, z, [rgb], extras in `layout`.

    pcl: x/y/z at 0/4/8, rgb at 16, extras from 20 (16 without rgb), step rounded up to 16 bytes
    (PointXYZRGB: 32). compact: everything packed in order (xyz+rgb: rgb at 12, step 16).
    """
    names = [*_XYZ, *(["rgb"] if has_rgb else []), *extra]
    if layout == "pcl":
        offsets = [0, 4, 8, *(16 + 4 * i for i in range(len(names) - 3))]
        step = -(-(offsets[-1] + 4) // 16) * 16
    else:
        offsets = [4 * i for i in range(len(names))]
        step = 4 * len(names)
    return [
        PointField(name=n, offset=o, datatype=PointField.FLOAT32, count=1) for n, o in zip(names, offsets, strict=True)
    ], step


def _packed_rgb(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 RGB -> (N,) float32 whose bits are the uint32 r << 16 | g << 8 | b (REP / PCL rgb field)."""
    bgra = cv2.cvtColor(rgb.reshape(1, -1, 3), cv2.COLOR_RGB2BGRA)  # bytes b, g, r, 255: little-endian 0xFFrrggbb
    packed = bgra.view("<u4").reshape(-1).astype(np.uint32) & np.uint32(0x00FFFFFF)
    return packed.view(np.float32)


def _bad(expected: str, got: object) -> ConversionError:
    return ConversionError(f"points_to_cloud: expected {expected}, got {got}")


def points_to_cloud(
    points: np.ndarray,
    header: Header,
    rgb: np.ndarray | None = None,
    fields: dict[str, np.ndarray] | None = None,
    layout: str = "pcl",
) -> PointCloud2:
    """PointCloud2 of (N, 3) or (H, W, 3) float points, optional uint8 RGB of the same shape and extra float fields.

    (H, W, 3) gives an organized cloud (height = H, `is_dense` false, NaN points kept); (N, 3) an
    unorganized one (`is_dense` true iff every coordinate is finite). `fields` maps names (e.g.
    "confidence") to float arrays of shape (N,) or (H, W). `layout`: "pcl" or "compact" (see `_float_fields`).
    """
    points = np.asarray(points)
    if points.ndim not in (2, 3) or points.shape[-1] != 3 or points.dtype.kind != "f":
        raise _bad("float points of shape (N, 3) or (H, W, 3)", f"shape {points.shape} dtype {points.dtype}")
    if layout not in _LAYOUTS:
        raise _bad(f"layout in {_LAYOUTS}", repr(layout))
    grid = points.shape[:-1]
    if rgb is not None:
        rgb = np.asarray(rgb)
        if rgb.shape != points.shape or rgb.dtype != np.uint8:
            raise _bad(f"uint8 rgb of shape {points.shape}", f"shape {rgb.shape} dtype {rgb.dtype}")
    extra = dict(fields or {})
    for name, values in extra.items():
        values = np.asarray(values)
        if name in (*_XYZ, *_RGB_NAMES) or not name:
            raise _bad("extra field names other than x, y, z, rgb, rgba and ''", repr(name))
        if values.shape != grid or values.dtype.kind not in "fiu":
            raise _bad(f"field {name!r} as numbers of shape {grid}", f"shape {values.shape} dtype {values.dtype}")
    point_fields, step = _float_fields(layout, rgb is not None, list(extra))
    n = int(np.prod(grid))
    storage, raw = zeroed_byte_array(n * step)  # the message's own buffer; padding stays zero
    if n:
        # One interleaving pass (cv2.mixChannels, SIMD) of every float column into the records.
        columns = [points.reshape(n, 3), *([_packed_rgb(rgb.reshape(n, 3))] if rgb is not None else [])]
        columns += [np.asarray(values).reshape(n) for values in extra.values()]
        sources = [np.ascontiguousarray(c, dtype=np.float32).reshape(1, n, -1) for c in columns]
        targets = [f.offset // 4 for f in point_fields]
        records = raw.view(np.float32).reshape(1, n, step // 4)
        cv2.mixChannels(sources, [records], [i for pair in enumerate(targets) for i in pair])
    organized = points.ndim == 3
    height, width = (grid[0], grid[1]) if organized else (1, n)
    return new_message(
        PointCloud2,
        storage,
        header=header,
        height=height,
        width=width,
        fields=point_fields,
        is_bigendian=HOST_BIGENDIAN,
        point_step=step,
        row_step=step * width,
        is_dense=not organized and bool(np.isfinite(points).all()),
    )


def _cloud_dtype(msg: PointCloud2) -> np.dtype:
    """Structured dtype of one point: fields named as sensor_msgs_py names them (count > 1: name_0, name_1...)."""
    names, formats, offsets = [], [], []
    order = ">" if msg.is_bigendian else "<"
    for i, f in enumerate(msg.fields):
        if f.datatype not in _DATATYPES:
            raise ConversionError(f"PointCloud2 field {f.name!r}: unknown datatype {f.datatype}; expected 1..8")
        dtype = _DATATYPES[f.datatype].newbyteorder(order)
        name = f.name or f"unnamed_field_{i}"
        for j in range(f.count):
            names.append(f"{name}_{j}" if f.count > 1 else name)
            formats.append(dtype)
            offsets.append(f.offset + j * dtype.itemsize)
        if f.offset + f.count * dtype.itemsize > msg.point_step:
            raise ConversionError(
                f"PointCloud2 field {f.name!r} ends at byte {f.offset + f.count * dtype.itemsize}, "
                f"beyond point_step {msg.point_step}"
            )
    if len(set(names)) != len(names):
        raise ConversionError(f"PointCloud2 has duplicate field names: {names}")
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": msg.point_step})


def _check_cloud(msg: PointCloud2) -> np.dtype:
    present = [f.name for f in msg.fields]
    if not set(_XYZ) <= set(present):
        raise ConversionError(f"PointCloud2: expected fields x, y, z, got {present}")
    dtype = _cloud_dtype(msg)
    if msg.row_step != msg.width * msg.point_step:
        raise ConversionError(
            f"PointCloud2: expected row_step = width x point_step = {msg.width} x {msg.point_step} = "
            f"{msg.width * msg.point_step}, got {msg.row_step}"
        )
    if len(msg.data) < msg.row_step * msg.height:
        raise ConversionError(
            f"PointCloud2 data has {len(msg.data)} bytes, expected at least row_step x height = "
            f"{msg.row_step} x {msg.height} = {msg.row_step * msg.height}"
        )
    return dtype


def cloud_to_arrays(msg: PointCloud2) -> dict[str, np.ndarray]:
    """Arrays of a PointCloud2 (for tests and tools), shaped (N, ...) or, when height > 1, (H, W, ...).

    "points": float32 x, y, z; "rgb": uint8 when an rgb / rgba field exists (packed r << 16 | g << 8 | b);
    every other field by its name in its own dtype (a field with count > 1 as name_0, name_1, ...).
    """
    dtype = _check_cloud(msg)
    records = _compat.cloud_codec.read(msg, dtype)
    grid = (msg.height, msg.width) if msg.height > 1 else (msg.height * msg.width,)
    out = {"points": np.stack([records[c] for c in _XYZ], axis=-1).astype(np.float32).reshape(*grid, 3)}
    for name in records.dtype.names:
        if name in _XYZ:
            continue
        values = records[name]
        if name in _RGB_NAMES:
            if values.dtype.itemsize != 4:
                raise ConversionError(
                    f"PointCloud2 field {name!r}: expected a 4-byte packed colour, got {values.dtype}"
                )
            packed = values.astype(values.dtype.newbyteorder("=")).view(np.uint32)
            rgb = np.stack([(packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF], axis=-1)
            out["rgb"] = rgb.astype(np.uint8).reshape(*grid, 3)
        else:
            out[name] = values.astype(values.dtype.newbyteorder("=")).reshape(grid)
    return out
