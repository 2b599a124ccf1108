"""The demo plays frames through the real node and saves what it publishes (ground-truth backend: checkable files)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import open3d as o3d
import pytest
from gt_backend import GroundTruthModel

from fin3r_lib.data.frame import Frame
from fin3r_lib.outputs import read_tum
from fin3r_ros.demo import play, read_frames, save
from fin3r_ros.tf_publisher import MAP_FROM_OPTICAL_WORLD

FRAMES = (0, 8, 16, 24)


@pytest.mark.slow
def test_demo_saves_map_depth_trajectory_and_previews(seven_scenes, seven_scenes_dir, tmp_path) -> None:
    frames = [Frame(rgb=seven_scenes["rgb"][i], stamp=i / 30.0, index=i) for i in FRAMES]
    params = {"input_max_side": 0, "map_rate_hz": 1000.0, "confidence_top_fraction": 1.0, "min_confidence": 1.0}
    model = GroundTruthModel.from_fixture(seven_scenes)
    rec, counts = play(iter(frames), seven_scenes["K"], params, model=model)
    assert counts == {"sent": 4, "published": 4, "rejected": 0}
    written = save(rec, tmp_path)

    expected = {"map.ply", "trajectory.tum", "intrinsics.json", "map_preview.png", "depth_preview.png"}
    assert {p.name for p in written} >= expected and all((tmp_path / name).is_file() for name in expected)
    depth_png = cv2.imread(str(tmp_path / "depth" / "000003.png"), cv2.IMREAD_UNCHANGED)
    assert depth_png.dtype == np.uint16
    np.testing.assert_array_equal(depth_png, seven_scenes["depth_mm"][FRAMES[-1]])  # mm in, mm out
    stamps, poses = read_tum(tmp_path / "trajectory.tum")
    np.testing.assert_allclose(stamps, [i / 30.0 for i in FRAMES], atol=1e-9)
    np.testing.assert_allclose(poses[0], MAP_FROM_OPTICAL_WORLD, atol=1e-9)  # the first camera, seen from map
    assert len(o3d.io.read_point_cloud(str(tmp_path / "map.ply")).points) > 10_000
    k = json.loads((tmp_path / "intrinsics.json").read_text())["K"]
    np.testing.assert_allclose(k, seven_scenes["K"])

    # the 7-Scenes folder holds depth PNGs beside the colour ones: the pattern keeps only the colour frames
    first = next(read_frames(seven_scenes_dir, "*.color.png", 30.0))
    np.testing.assert_array_equal(first.rgb, seven_scenes["rgb"][0])
