"""The camera's own K through the real node: a ground-truth backend whose K is wrong, a camera_info with the
real K. Published camera_info must be the given K, and the clouds must reproject with it onto the pixels
whose published depth they came from (the model's K would put them elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest
from gt_backend import GroundTruthModel
from node_fixtures import NodeRig
from ros_harness import RosHarness

from fin3r_ros.conversions import cloud_to_arrays, depth_image_to_array, pose_to_matrix
from fin3r_ros.tf_publisher import MAP_FROM_OPTICAL_WORLD, nearest_rigid

FRAMES = (0, 3, 6, 9)


@pytest.fixture
def ros():
    with RosHarness() as harness:
        yield harness


def _wrong(k: np.ndarray) -> np.ndarray:
    """A K the backend 'predicts': focal lengths off by -20 % / +25 %, principal point off by 7 px."""
    out = k.copy()
    out[0, 0] *= 0.8
    out[1, 1] *= 1.25
    out[:2, 2] += 7.0
    return out


def _project(points_map: np.ndarray, map_from_cam: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (N, 2) and z (N,) of map points seen by the camera at `map_from_cam`."""
    cam = (points_map - map_from_cam[:3, 3]) @ map_from_cam[:3, :3]
    uv = cam[:, :2] / cam[:, 2:] * np.diag(k)[:2] + k[:2, 2]
    return uv, cam[:, 2]


@pytest.mark.slow
def test_published_intrinsics_are_the_camera_info_k_and_clouds_reproject_with_it(ros, seven_scenes) -> None:
    k = seven_scenes["K"]
    rigid = np.stack([nearest_rigid(p) for p in seven_scenes["poses"]])
    model = GroundTruthModel(seven_scenes["rgb"], seven_scenes["depth_mm"], rigid, _wrong(k))
    rig = NodeRig(ros, model, context_size=3, voxel_size=0.01)
    for n, i in enumerate(FRAMES):
        rig.send(seven_scenes["rgb"][i], 5.0 + n / 10, k=k)
    assert rig.errors() == 0

    for info in rig.got["depth/camera_info"]:
        np.testing.assert_allclose(np.reshape(info.k, (3, 3)), k, atol=1e-9)
        assert (info.width, info.height) == (640, 480)
    pose = pose_to_matrix(rig.got["pose"][-1])
    points = cloud_to_arrays(rig.got["points"][-1])["points"].astype(np.float64)
    depth = depth_image_to_array(rig.got["depth"][-1])
    uv, z = _project(points, pose, k)
    assert len(uv) > 100_000
    pixels = np.round(uv).astype(int)
    np.testing.assert_allclose(uv, pixels, atol=1e-3)  # every point lands on a pixel centre ...
    np.testing.assert_allclose(z, depth[pixels[:, 1], pixels[:, 0]], rtol=1e-5)  # ... whose depth it is
    wrong_uv, _ = _project(points, pose, _wrong(k))
    assert np.median(np.abs(wrong_uv - uv)) > 5.0  # the model's K does not reproject them

    # the map (every frame placed through camera-K unprojections) is the ground-truth cloud
    map_points = cloud_to_arrays(rig.got["map"][-1])["points"].astype(np.float64)
    last = FRAMES[-1]
    truth_depth = seven_scenes["depth_mm"][last] / 1000.0
    map_from_last = MAP_FROM_OPTICAL_WORLD @ np.linalg.inv(rigid[0]) @ rigid[last]
    uv, z = _project(map_points, map_from_last, k)
    inside = (z > 0) & (uv[:, 0] > 0) & (uv[:, 0] < 639) & (uv[:, 1] > 0) & (uv[:, 1] < 479)
    px = np.round(uv[inside]).astype(int)
    seen = truth_depth[px[:, 1], px[:, 0]]
    ok = seen > 0
    assert ok.sum() > 10_000
    # points visible from the last camera lie on its ground-truth surface (front-most surface: <= 2 cm)
    assert np.median(np.abs(z[inside][ok] - seen[ok])) < 0.02
