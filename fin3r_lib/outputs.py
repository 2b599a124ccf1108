"""Writers of reconstruction results: PLY map, TUM trajectory, depth/confidence maps, intrinsics, previews.

Used by `fin3r reconstruct` and by the node's demo recorder, so both write the same files:
- PLY (binary little-endian, numpy only): x/y/z float32 + red/green/blue uint8;
- TUM trajectory: one line per pose, `t tx ty tz qx qy qz qw` (readable by evo);
- depth: 16-bit PNG in millimetres (0 = invalid, clipped at 65.535 m) and float32 `.npy` (NaN = invalid);
- intrinsics: JSON with width, height, K (median over frames) and each frame's K when frame names are given;
- previews: PNG images drawn with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from fin3r_lib.errors import Fin3rError, InputError


class OutputError(Fin3rError):
    """A result file could not be written."""


def _check_cloud(points: np.ndarray, colors: np.ndarray) -> None:
    if points.ndim != 2 or points.shape[1] != 3 or colors.shape != points.shape:
        raise InputError(f"expected (N, 3) points and (N, 3) colours, got {points.shape} and {colors.shape}")


_PLY_XYZ = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
_PLY_RGB = [("red", "u1"), ("green", "u1"), ("blue", "u1")]


def ply_header(count: int, colors: bool) -> bytes:
    """The ASCII header of a binary little-endian PLY of `count` vertices: float x/y/z (+ uchar red/green/blue)."""
    props = [f"property float {n}" for n, _ in _PLY_XYZ] + (
        [f"property uchar {n}" for n, _ in _PLY_RGB] if colors else []
    )
    lines = ["ply", "format binary_little_endian 1.0", f"element vertex {count}", *props, "end_header"]
    return ("\n".join(lines) + "\n").encode("ascii")


def write_ply(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None) -> Path:
    """Write (N, 3) points as a binary little-endian PLY (x/y/z float32, numpy only), with (N, 3) uint8
    colours as red/green/blue when given. Each vertex is 12 bytes (15 with colours), after `ply_header`."""
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise InputError(f"expected (N, 3) points, got shape {points.shape}")
    if colors is not None:
        colors = np.asarray(colors)
        if colors.shape != points.shape or colors.dtype != np.uint8:
            raise InputError(
                f"expected (N, 3) uint8 colours for {len(points)} points, got shape {colors.shape} {colors.dtype}"
            )
    vertex = np.empty(len(points), np.dtype(_PLY_XYZ + (_PLY_RGB if colors is not None else [])))
    for axis, (name, _) in enumerate(_PLY_XYZ):
        vertex[name] = points[:, axis]
    if colors is not None:
        for axis, (name, _) in enumerate(_PLY_RGB):
            vertex[name] = colors[:, axis]
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            fh.write(ply_header(len(points), colors is not None))
            fh.write(vertex.tobytes())
    except OSError as exc:
        raise OutputError(f"could not write the point cloud to {path}: {exc.strerror or exc}") from exc
    return path


TUM_HEADER = "# timestamp tx ty tz qx qy qz qw"


def format_stamp_ns(stamp_ns: int) -> str:
    """Integer nanoseconds as exact decimal seconds with 9 digits (1491682360314066469 -> "1491682360.314066469")."""
    sign = "-" if stamp_ns < 0 else ""
    seconds, nanos = divmod(abs(int(stamp_ns)), 1_000_000_000)
    return f"{sign}{seconds}.{nanos:09d}"


def tum_line(stamp: str, pose: np.ndarray) -> str:
    """One TUM line `t tx ty tz qx qy qz qw` of a camera-to-world 4x4 pose; `stamp` already formatted."""
    from transforms3d.quaternions import mat2quat

    w, x, y, z = mat2quat(np.asarray(pose, dtype=np.float64)[:3, :3])  # transforms3d order is (w, x, y, z)
    tx, ty, tz = pose[:3, 3]
    return f"{stamp} {tx:.9f} {ty:.9f} {tz:.9f} {x:.9f} {y:.9f} {z:.9f} {w:.9f}"


def write_tum(path: str | Path, stamps: Sequence[float], poses: Sequence[np.ndarray] | np.ndarray) -> Path:
    """Write camera-to-world 4x4 poses as a TUM trajectory (`t tx ty tz qx qy qz qw`, quaternion x-y-z-w)."""
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, 4, 4)
    if len(stamps) != len(poses):
        raise InputError(f"expected one stamp per pose, got {len(stamps)} stamps and {len(poses)} poses")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [TUM_HEADER] + [tum_line(f"{stamp:.9f}", pose) for stamp, pose in zip(stamps, poses, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_tum(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a TUM trajectory: (N,) stamps and (N, 4, 4) poses (comment lines skipped)."""
    from transforms3d.quaternions import quat2mat

    rows = [line.split() for line in Path(path).read_text().splitlines() if line.strip() and not line.startswith("#")]
    if any(len(r) != 8 for r in rows):
        raise InputError(f"{path}: expected 8 numbers per TUM line (t tx ty tz qx qy qz qw)")
    data = np.array(rows, dtype=np.float64).reshape(-1, 8)
    poses = np.tile(np.eye(4), (len(data), 1, 1))
    for pose, row in zip(poses, data, strict=True):
        pose[:3, :3] = quat2mat([row[7], row[4], row[5], row[6]])
        pose[:3, 3] = row[1:4]
    return data[:, 0], poses


def write_depth(directory: str | Path, name: str, depth: np.ndarray) -> tuple[Path, Path]:
    """Write a z-depth map (metres, NaN invalid) as `name.png` (uint16 mm, 0 invalid) and `name.npy` (float32)."""
    if depth.ndim != 2:
        raise InputError(f"expected an (H, W) depth map, got shape {depth.shape}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    depth = depth.astype(np.float32)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(depth) & (depth > 0)
    mm = np.zeros(depth.shape, np.uint16)
    mm[valid] = np.clip(np.round(depth[valid] * 1000.0), 1, 65535).astype(np.uint16)
    png, npy = directory / f"{name}.png", directory / f"{name}.npy"
    if not cv2.imwrite(str(png), mm):
        raise OutputError(f"OpenCV could not write {png}")
    np.save(npy, depth)
    return png, npy


def write_confidence(directory: str | Path, name: str, confidence: np.ndarray) -> Path:
    """Write a confidence map as `name.npy` (float32)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.npy"
    np.save(path, confidence.astype(np.float32))
    return path


def write_intrinsics(
    path: str | Path, intrinsics: np.ndarray, size: tuple[int, int], names: Sequence[str] | None = None
) -> Path:
    """Write intrinsics as JSON: width, height, K (the median over frames for (N, 3, 3) input) and, per frame, K."""
    k = np.asarray(intrinsics, dtype=np.float64)
    per_frame = k.reshape(-1, 3, 3)
    if names is not None and len(names) != len(per_frame):
        raise InputError(f"expected one name per intrinsics matrix, got {len(names)} names and {len(per_frame)}")
    median = np.median(per_frame, axis=0)
    doc: dict[str, object] = {
        "height": int(size[0]),
        "width": int(size[1]),
        "K": median.tolist(),
        "fx": median[0, 0],
        "fy": median[1, 1],
        "cx": median[0, 2],
        "cy": median[1, 2],
    }
    if names is not None:
        doc["frames"] = {n: m.tolist() for n, m in zip(names, per_frame, strict=True)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        text = json.dumps(doc, indent=1, allow_nan=False)
    except ValueError as exc:
        raise OutputError(f"{path}: expected finite intrinsics, got non-finite values in {median.tolist()}") from exc
    path.write_text(text + "\n")
    return path


def write_previews(
    directory: str | Path,
    points: np.ndarray,
    colors: np.ndarray,
    depths: Sequence[tuple[str, np.ndarray]],
    poses: np.ndarray | None = None,
    max_points: int = 50_000,
) -> list[Path]:
    """Draw `map_preview.png` (map from above, camera path on top) and `depth_preview.png` (up to 4 depth maps)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _check_cloud(points, colors)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = []

    fig, ax = plt.subplots(figsize=(7, 7))
    if len(points):
        pick = np.random.default_rng(0).choice(len(points), min(max_points, len(points)), replace=False)
        # OpenCV world: x right, z forward, y down -> seen from above is the x-z plane
        ax.scatter(points[pick, 0], points[pick, 2], c=colors[pick] / 255.0, s=1.0, linewidths=0)
    if poses is not None and len(poses):
        ax.plot(poses[:, 0, 3], poses[:, 2, 3], "r-", lw=1.5, label="camera path")
        ax.legend(loc="upper right")
    ax.set(xlabel="x", ylabel="z", title=f"map from above ({len(points)} points)", aspect="equal")
    out.append(directory / "map_preview.png")
    fig.savefig(out[-1], dpi=120, bbox_inches="tight")
    plt.close(fig)

    shown = list(depths)[:4]
    fig, axes = plt.subplots(1, max(len(shown), 1), figsize=(4 * max(len(shown), 1), 3.4), squeeze=False)
    for ax, (name, depth) in zip(axes[0], shown, strict=False):
        image = ax.imshow(depth, cmap="turbo")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(name)
        ax.axis("off")
    out.append(directory / "depth_preview.png")
    fig.savefig(out[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out
