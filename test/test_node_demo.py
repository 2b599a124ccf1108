"""The demo plays frames through the real node, whose runner writes the output folder (ground-truth backend)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import open3d as o3d
import pytest
from gt_backend import GroundTruthModel

from fin3r_lib.data.frame import Frame
from fin3r_lib.output_folder import OutputFolder
from fin3r_lib.outputs import read_tum
from fin3r_ros.demo import play, read_frames

FRAMES = (0, 8, 16, 24)


@pytest.mark.slow
def test_demo_saves_map_depth_trajectory_and_previews(seven_scenes, seven_scenes_dir, tmp_path) -> None:
    frames = [Frame(rgb=seven_scenes["rgb"][i], stamp=i / 30.0, index=i) for i in FRAMES]
    params = {"input_max_side": 0, "map_rate_hz": 1000.0, "confidence_top_fraction": 1.0, "min_confidence": 1.0}
    model = GroundTruthModel.from_fixture(seven_scenes)
    out = tmp_path / "demo"
    rec, counts = play(iter(frames), seven_scenes["K"], params, model=model, sinks=[OutputFolder(out, params)])
    assert counts == {"sent": 4, "published": 4, "rejected": 0}
    assert len(rec.pose) == 4

    expected = {"map.ply", "trajectory.txt", "intrinsics.json", "map_preview.png", "depth_preview.png"}
    assert all((out / name).is_file() for name in expected)
    depth_png = cv2.imread(str(out / "depth" / "000003.png"), cv2.IMREAD_UNCHANGED)
    assert depth_png.dtype == np.uint16
    np.testing.assert_array_equal(depth_png, seven_scenes["depth_mm"][FRAMES[-1]])  # mm in, mm out
    stamps, poses = read_tum(out / "trajectory.txt")
    np.testing.assert_allclose(stamps, [i / 30.0 for i in FRAMES], atol=1e-9)
    np.testing.assert_allclose(poses[0], np.eye(4), atol=1e-9)  # the world is the first camera's optical frame
    assert len(o3d.io.read_point_cloud(str(out / "map.ply")).points) > 10_000
    k = json.loads((out / "intrinsics.json").read_text())["K"]
    np.testing.assert_allclose(k, seven_scenes["K"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 4 and summary["skipped"] == [] and not summary["interrupted"]

    # the 7-Scenes folder holds depth PNGs beside the colour ones: the pattern keeps only the colour frames
    first = next(read_frames(seven_scenes_dir, "*.color.png", 30.0))
    np.testing.assert_array_equal(first.rgb, seven_scenes["rgb"][0])
