"""The K that goes out when the input is downscaled first (`input_max_side` > 0): the node's depth/camera_info
and `fin3r reconstruct`'s intrinsics.json, against values worked out by hand.

7-Scenes K: fx = fy = 585, cx = 320, cy = 240 at 640x480. `input_max_side` 160 downscales by 1/4 to 160x120;
with pixel centres at integer coordinates a pixel u of the small grid covers input pixels [4u, 4u + 4), so its
centre is input coordinate 4u + 1.5: u = (x - 1.5) / 4. Hence fx' = 585 / 4 = 146.25,
cx' = (320 - 1.5) / 4 = 79.625, cy' = (240 - 1.5) / 4 = 59.625.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from bag_fixtures import CameraSpec, write_bag
from gt_backend import GroundTruthModel
from node_fixtures import NodeRig
from ros_harness import RosHarness

from fin3r_lib.cli.main import main
from fin3r_ros.conversions import cloud_to_arrays, pose_to_matrix

MAX_SIDE = 160
#: the 160x120 grid's K, by hand (module docstring)
HAND_K = np.array([[146.25, 0.0, 79.625], [0.0, 146.25, 59.625], [0.0, 0.0, 1.0]])
FRAMES = (0, 3, 6)


@pytest.fixture
def ros():
    with RosHarness() as harness:
        yield harness


def _wrong_model(small_scenes: dict[str, np.ndarray]) -> GroundTruthModel:
    """Ground truth of the downscaled frames, with a K the camera's replaces (focal -20 %, centre +3 px)."""
    wrong = small_scenes["K"].copy()
    wrong[0, 0] *= 0.8
    wrong[:2, 2] += 3.0
    return GroundTruthModel(small_scenes["rgb"], small_scenes["depth_mm"], small_scenes["poses"], wrong)


def test_hand_k_is_the_quarter_size_k(seven_scenes) -> None:
    np.testing.assert_array_equal(seven_scenes["K"], [[585, 0, 320], [0, 585, 240], [0, 0, 1]])


@pytest.mark.slow
@pytest.mark.parametrize("resolution", ["model", "input"])
def test_node_publishes_the_rescaled_camera_k(ros, seven_scenes, small_scenes, resolution) -> None:
    rig = NodeRig(
        ros,
        _wrong_model(small_scenes),
        input_max_side=MAX_SIDE,
        output_resolution=resolution,
        context_size=2,
        keyframe_min_flow_px=0.0,
    )
    for n, i in enumerate(FRAMES):
        rig.send(seven_scenes["rgb"][i], 3.0 + n / 10, k=seven_scenes["K"])
    assert rig.errors() == 0
    expected, size = (HAND_K, (160, 120)) if resolution == "model" else (seven_scenes["K"], (640, 480))
    assert ros.spin_until(lambda: len(rig.got["depth/camera_info"]) == len(FRAMES), timeout=5.0)
    for info in rig.got["depth/camera_info"]:
        np.testing.assert_allclose(np.reshape(info.k, (3, 3)), expected, atol=1e-9)
        assert (info.width, info.height) == size
    # the cloud was unprojected on the 160x120 grid with HAND_K: it reprojects onto that grid's pixel centres
    pose = pose_to_matrix(rig.got["pose"][-1])
    points = cloud_to_arrays(rig.got["points"][-1])["points"].astype(np.float64)
    cam = (points - pose[:3, 3]) @ pose[:3, :3]  # the published pose's rotation maps optical axes into map
    uv = cam[:, :2] / cam[:, 2:] * np.diag(HAND_K)[:2] + HAND_K[:2, 2]
    assert len(uv) > 5_000
    np.testing.assert_allclose(uv, np.round(uv), atol=1e-3)
    assert uv.min() > -0.5 and uv[:, 0].max() < 159.5 and uv[:, 1].max() < 119.5


def test_reconstruct_writes_the_rescaled_camera_k(seven_scenes, small_scenes, tmp_path, monkeypatch) -> None:
    import fin3r_lib.cli.reconstruct_run as reconstruct

    monkeypatch.setattr(reconstruct, "_load_model", lambda args: _wrong_model(small_scenes))
    bag = write_bag(
        tmp_path / "bag", [CameraSpec(rgb=seven_scenes["rgb"][list(FRAMES)], K=seven_scenes["K"], distortion=[0.0] * 5)]
    )
    out = tmp_path / "out"
    args = [str(bag), "--out", str(out), "--model", "vggt-tiny", "--checkpoint", "none", "--device", "cpu"]
    assert main(["reconstruct", *args, "--quiet", "--input-max-side", str(MAX_SIDE)]) == 0
    doc = json.loads((out / "intrinsics.json").read_text())
    assert (doc["width"], doc["height"]) == (160, 120) and len(doc["frames"]) == len(FRAMES)
    for k in doc["frames"].values():
        np.testing.assert_allclose(k, HAND_K, atol=1e-9)
    assert (doc["fx"], doc["fy"], doc["cx"], doc["cy"]) == pytest.approx((146.25, 146.25, 79.625, 59.625), abs=1e-9)
