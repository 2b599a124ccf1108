"""Shared pytest fixtures: the real 7-Scenes frames, and an isolated ROS 2 domain per test run."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "7scenes-redkitchen-150-199"
SHARED_SPECS = REPO.parent / "shared" / "specs"
TEST_DATA = REPO / "test" / "data"

# One random ROS domain for this test process, local discovery only (set before rclpy is imported).
os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 100)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


def _require_7scenes() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real 7-Scenes frames not available: {SHARED_DATA} is absent (it lives in ../shared)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def seven_scenes_dir() -> Path:
    """Folder of the 50 real 7-Scenes redkitchen frames (skips when ../shared is absent)."""
    return _require_7scenes()


@pytest.fixture(scope="session")
def seven_scenes(seven_scenes_dir: Path) -> dict[str, np.ndarray]:
    """The 7-Scenes frames: rgb (N,480,640,3) uint8, depth_mm (N,480,640) uint16, poses (N,4,4), K (3,3)."""
    import cv2

    colors = sorted(seven_scenes_dir.glob("frame-*.color.png"))
    rgb = np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in colors])
    depth = np.stack([cv2.imread(str(p).replace(".color.png", ".depth.png"), cv2.IMREAD_UNCHANGED) for p in colors])
    poses = np.stack([np.loadtxt(str(p).replace(".color.png", ".pose.txt")) for p in colors])
    k = np.loadtxt(seven_scenes_dir / "camera-intrinsics.txt")
    return {"rgb": rgb, "depth_mm": depth, "poses": poses, "K": k}


def read_keys_file(path: Path) -> dict[str, tuple[int, ...]]:
    """A `<name>.keys.tsv` file (key TAB shape per line) -> key -> shape in file order."""
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            key, shape = line.split("\t")
            out[key] = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
    return out


@pytest.fixture(scope="session")
def release_keys() -> Callable[[str], dict[str, tuple[int, ...]]]:
    """Reader of `../shared/specs/<name>.keys.tsv`, else `test/data/<name>.keys.tsv` (skips when neither exists)."""

    def read(name: str) -> dict[str, tuple[int, ...]]:
        for path in (SHARED_SPECS / f"{name}.keys.tsv", TEST_DATA / f"{name}.keys.tsv"):
            if path.is_file():
                return read_keys_file(path)
        pytest.skip(f"release key list not available: {name}.keys.tsv is in neither {SHARED_SPECS} nor {TEST_DATA}")

    return read


@pytest.fixture(scope="session")
def small_scenes(seven_scenes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The 7-Scenes frames at a quarter of their size (160x120, fast), with the intrinsics of that grid."""
    import cv2

    rgb = np.stack([cv2.resize(img, (160, 120), interpolation=cv2.INTER_AREA) for img in seven_scenes["rgb"]])
    depth = np.stack([cv2.resize(d, (160, 120), interpolation=cv2.INTER_NEAREST) for d in seven_scenes["depth_mm"]])
    k = seven_scenes["K"].copy()
    k[:2, :2] /= 4
    k[:2, 2] = (k[:2, 2] + 0.5) / 4 - 0.5
    return {"rgb": rgb, "depth_mm": depth, "poses": seven_scenes["poses"], "K": k}
