"""write_ply (numpy only): binary little-endian PLY checked byte by byte with a parser written here (struct)
and read back by open3d where it is installed."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from fin3r_lib.errors import InputError
from fin3r_lib.outputs import OutputError, write_ply

PLY_TYPES = {"float": "f", "uchar": "B", "double": "d", "int": "i"}


def parse_ply(data: bytes) -> tuple[list[tuple[str, str]], list[tuple]]:
    """A small PLY reader: (property name, struct code) list and the vertices as tuples."""
    end = data.index(b"end_header\n") + len(b"end_header\n")
    lines = data[:end].decode("ascii").splitlines()
    assert lines[0] == "ply" and lines[1] == "format binary_little_endian 1.0" and lines[-1] == "end_header"
    count, props = None, []
    for line in lines[2:-1]:
        words = line.split()
        if words[0] == "element":
            assert words[1] == "vertex"
            count = int(words[2])
        elif words[0] == "property":
            props.append((words[2], PLY_TYPES[words[1]]))
    fmt = "<" + "".join(code for _, code in props)
    size = struct.calcsize(fmt)
    body = data[end:]
    assert count is not None and len(body) == count * size, "body length must be count * vertex size"
    return props, [struct.unpack_from(fmt, body, k * size) for k in range(count)]


def test_coloured_cloud_is_written_byte_exactly(tmp_path) -> None:
    points = np.array([[0.5, -1.25, 3.0], [1e-3, 2.0**20, -0.0], [np.float32(0.1), 7.0, -2.5]])
    colors = np.array([[255, 0, 17], [1, 2, 3], [128, 64, 32]], np.uint8)
    path = write_ply(tmp_path / "sub" / "map.ply", points, colors)
    data = path.read_bytes()
    header = (
        b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
        b"property float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    )
    body = b"".join(struct.pack("<fffBBB", *p, *c) for p, c in zip(points.tolist(), colors.tolist(), strict=True))
    assert data == header + body
    props, vertices = parse_ply(data)
    assert [name for name, _ in props] == ["x", "y", "z", "red", "green", "blue"]
    assert np.array_equal(np.array([v[:3] for v in vertices]), points.astype(np.float32))
    assert np.array_equal(np.array([v[3:] for v in vertices]), colors)


def test_points_without_colours_and_an_empty_cloud(tmp_path) -> None:
    points = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    props, vertices = parse_ply(write_ply(tmp_path / "a.ply", points).read_bytes())
    assert props == [("x", "f"), ("y", "f"), ("z", "f")]
    assert np.array_equal(np.array(vertices, np.float32), points)
    props, vertices = parse_ply(
        write_ply(tmp_path / "e.ply", np.zeros((0, 3)), np.zeros((0, 3), np.uint8)).read_bytes()
    )
    assert len(props) == 6 and vertices == []


def test_open3d_reads_the_file_back(tmp_path) -> None:
    o3d = pytest.importorskip("open3d")
    rng = np.random.default_rng(1)
    points = rng.normal(size=(1000, 3))
    colors = rng.integers(0, 256, size=(1000, 3), dtype=np.uint8)
    cloud = o3d.io.read_point_cloud(str(write_ply(tmp_path / "m.ply", points, colors)))
    assert np.array_equal(np.asarray(cloud.points), points.astype(np.float32).astype(np.float64))
    assert np.allclose(np.asarray(cloud.colors) * 255.0, colors, atol=1e-6)


def test_bad_input_is_refused_with_what_was_expected(tmp_path) -> None:
    with pytest.raises(InputError, match=r"expected \(N, 3\) points, got shape \(4, 2\)"):
        write_ply(tmp_path / "x.ply", np.zeros((4, 2)))
    with pytest.raises(InputError, match=r"expected \(N, 3\) uint8 colours for 4 points, got shape \(4, 3\) float64"):
        write_ply(tmp_path / "x.ply", np.zeros((4, 3)), np.zeros((4, 3)))
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"could not write the point cloud to .*file/x\.ply"):
        write_ply(tmp_path / "file" / "x.ply", np.zeros((1, 3)))
    assert not (tmp_path / "x.ply").exists()
