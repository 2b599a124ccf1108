"""PointCloud2 <-> arrays, on every cloud codec that imports here (numpy; sensor_msgs_py on ROS)."""

from __future__ import annotations

import array

import numpy as np
import pytest
from conversion_samples import use_codec
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from fin3r_ros.conversions import ConversionError, _compat, cloud_to_arrays, points_to_cloud

RNG = np.random.default_rng(11)


@pytest.fixture(params=sorted(_compat.CLOUD_CODECS))
def cloud_codec(request, monkeypatch):
    """Each cloud codec in turn; sensor_msgs_py skips where it does not import."""
    return use_codec(monkeypatch, "cloud", request.param)


def layout_of(msg: PointCloud2) -> list[tuple[str, int, int, int]]:
    return [(f.name, f.offset, f.datatype, f.count) for f in msg.fields]


F32 = PointField.FLOAT32


def test_pcl_layout_of_an_xyzrgb_cloud():
    msg = points_to_cloud(np.zeros((4, 3), np.float32), Header(frame_id="map"), rgb=np.zeros((4, 3), np.uint8))
    assert layout_of(msg) == [("x", 0, F32, 1), ("y", 4, F32, 1), ("z", 8, F32, 1), ("rgb", 16, F32, 1)]
    assert (msg.point_step, msg.row_step, msg.height, msg.width, len(msg.data)) == (32, 128, 1, 4, 128)
    assert msg.header.frame_id == "map"


def test_pcl_layout_puts_extra_fields_after_rgb_and_pads_to_16_bytes():
    ones = np.ones(2)
    msg = points_to_cloud(np.zeros((2, 3)), Header(), fields={"confidence": ones})
    assert layout_of(msg)[3:] == [("confidence", 16, F32, 1)] and msg.point_step == 32
    many = points_to_cloud(
        np.zeros((2, 3)), Header(), rgb=np.zeros((2, 3), np.uint8), fields=dict.fromkeys("abcd", ones)
    )
    assert [f.offset for f in many.fields] == [0, 4, 8, 16, 20, 24, 28, 32] and many.point_step == 48


def test_compact_layout():
    msg = points_to_cloud(np.zeros((2, 3)), Header(), rgb=np.zeros((2, 3), np.uint8), layout="compact")
    assert layout_of(msg) == [("x", 0, F32, 1), ("y", 4, F32, 1), ("z", 8, F32, 1), ("rgb", 12, F32, 1)]
    assert msg.point_step == 16


def test_rgb_is_packed_r16_g8_b_as_float32_bits_and_padding_is_zero():
    points = np.array([[1.0, 2.0, 3.0]], np.float32)
    msg = points_to_cloud(points, Header(), rgb=np.array([[0x12, 0x34, 0x56]], np.uint8))
    raw = np.frombuffer(msg.data, np.uint8)
    assert np.frombuffer(raw[16:20].tobytes(), np.uint32)[0] == 0x123456
    assert np.array_equal(np.frombuffer(raw[:12].tobytes(), np.float32), points[0])
    assert not raw[12:16].any() and not raw[20:].any()


def test_organized_cloud_keeps_nan_and_round_trips(cloud_codec):
    points = RNG.normal(size=(4, 5, 3)).astype(np.float32)
    points[1, 2] = np.nan
    rgb = RNG.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    confidence = RNG.uniform(size=(4, 5)).astype(np.float32)
    msg = points_to_cloud(points, Header(), rgb=rgb, fields={"confidence": confidence})
    assert (msg.height, msg.width, msg.is_dense, msg.row_step) == (4, 5, False, 5 * 32)
    out = cloud_to_arrays(msg)
    assert sorted(out) == ["confidence", "points", "rgb"]
    assert out["points"].dtype == np.float32 and np.array_equal(out["points"], points, equal_nan=True)
    assert out["rgb"].dtype == np.uint8 and np.array_equal(out["rgb"], rgb)
    assert np.array_equal(out["confidence"], confidence)


def test_unorganized_cloud_is_dense_only_when_all_finite(cloud_codec):
    points = RNG.normal(size=(50, 3))
    msg = points_to_cloud(points, Header(), layout="compact")
    assert (msg.height, msg.width, msg.is_dense) == (1, 50, True)
    assert np.array_equal(cloud_to_arrays(msg)["points"], points.astype(np.float32))
    points[7, 1] = np.inf
    assert points_to_cloud(points, Header()).is_dense is False


def test_empty_cloud_reads_back_empty(cloud_codec):
    out = cloud_to_arrays(points_to_cloud(np.zeros((0, 3), np.float32), Header()))
    assert out["points"].shape == (0, 3)


def foreign_cloud(bigendian: bool) -> tuple[PointCloud2, np.ndarray]:
    """A cloud as another driver writes it: uint16 ring, rgba as UINT32, a 3-vector normal, any byte order."""
    order = ">" if bigendian else "<"
    dtype = np.dtype(
        {
            "names": ["x", "y", "z", "ring", "rgba", "normal"],
            "formats": [order + "f4"] * 3 + [order + "u2", order + "u4", (order + "f4", 3)],
            "offsets": [0, 4, 8, 12, 16, 20],
            "itemsize": 36,
        }
    )
    records = np.zeros(3, dtype)
    records["x"], records["y"], records["z"] = [1, 2, 3], [4, 5, 6], [7, 8, 9]
    records["ring"] = [0, 1, 65535]
    records["rgba"] = [0xFF010203, 0x00FFFFFF, 0x7F000080]
    records["normal"] = [[0, 0, 1], [0, 1, 0], [1, 0, 0]]
    fields = [
        PointField(name="x", offset=0, datatype=F32, count=1),
        PointField(name="y", offset=4, datatype=F32, count=1),
        PointField(name="z", offset=8, datatype=F32, count=1),
        PointField(name="ring", offset=12, datatype=PointField.UINT16, count=1),
        PointField(name="rgba", offset=16, datatype=PointField.UINT32, count=1),
        PointField(name="normal", offset=20, datatype=F32, count=3),
    ]
    msg = PointCloud2(height=1, width=3, fields=fields, is_bigendian=bigendian, point_step=36, row_step=108)
    msg.data = array.array("B", records.tobytes())
    return msg, records


@pytest.mark.parametrize("bigendian", [False, True])
def test_clouds_from_other_drivers_in_either_byte_order(cloud_codec, bigendian):
    msg, _ = foreign_cloud(bigendian)
    out = cloud_to_arrays(msg)
    assert np.array_equal(out["points"], [[1, 4, 7], [2, 5, 8], [3, 6, 9]])
    assert out["ring"].tolist() == [0, 1, 65535] and out["ring"].dtype == np.uint16
    assert out["rgb"].tolist() == [[1, 2, 3], [255, 255, 255], [0, 0, 128]]
    assert [out[f"normal_{i}"].tolist() for i in range(3)] == [[0, 0, 1], [0, 1, 0], [1, 0, 0]]


# ---- bad input ----


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"points": np.zeros((4, 2))}, r"expected float points of shape \(N, 3\) or \(H, W, 3\), got shape \(4, 2\)"),
        ({"points": np.zeros((4, 3), np.int32)}, r"got shape \(4, 3\) dtype int32"),
        ({"rgb": np.zeros((5, 3), np.uint8)}, r"expected uint8 rgb of shape \(4, 3\), got shape \(5, 3\) dtype uint8"),
        ({"rgb": np.zeros((4, 3), np.float32)}, r"got shape \(4, 3\) dtype float32"),
        ({"fields": {"confidence": np.zeros(5)}}, r"field 'confidence' as numbers of shape \(4,\), got shape \(5,\)"),
        (
            {"fields": {"rgb": np.zeros(4)}},
            r"expected extra field names other than x, y, z, rgb, rgba and '', got 'rgb'",
        ),
        ({"layout": "pcd"}, r"expected layout in \('pcl', 'compact'\), got 'pcd'"),
    ],
)
def test_points_to_cloud_rejects_bad_arrays(kwargs, match):
    args = {"points": np.zeros((4, 3), np.float32), **kwargs}
    with pytest.raises(ConversionError, match=match) as err:
        points_to_cloud(header=Header(), **args)
    assert str(err.value).startswith("points_to_cloud: expected ")


def test_cloud_without_xyz():
    msg, _ = foreign_cloud(False)
    msg.fields = msg.fields[1:]
    with pytest.raises(ConversionError, match=r"expected fields x, y, z, got \['y', 'z', 'ring', 'rgba', 'normal'\]"):
        cloud_to_arrays(msg)


def test_cloud_data_shorter_than_row_step_times_height():
    msg, _ = foreign_cloud(False)
    msg.data = msg.data[:100]
    with pytest.raises(
        ConversionError, match=r"data has 100 bytes, expected at least row_step x height = 108 x 1 = 108"
    ):
        cloud_to_arrays(msg)


def test_cloud_with_padded_rows():
    msg, _ = foreign_cloud(False)
    msg.row_step = 112
    with pytest.raises(ConversionError, match=r"expected row_step = width x point_step = 3 x 36 = 108, got 112"):
        cloud_to_arrays(msg)


def test_cloud_field_beyond_point_step():
    msg, _ = foreign_cloud(False)
    msg.point_step, msg.row_step = 28, 84
    with pytest.raises(ConversionError, match=r"field 'normal' ends at byte 32, beyond point_step 28"):
        cloud_to_arrays(msg)


def test_cloud_field_of_unknown_datatype():
    msg, _ = foreign_cloud(False)
    msg.fields[3].datatype = 9
    with pytest.raises(ConversionError, match=r"field 'ring': unknown datatype 9; expected 1..8"):
        cloud_to_arrays(msg)
