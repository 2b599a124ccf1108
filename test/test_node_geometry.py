"""End to end through the node: fed the 7-Scenes ground truth, the published map, points, pose and TF must
give the truth back, which proves every frame and axis convention from the callback to the publishers.
The tiny VGGT and the tiny DUSt3R run through the same path (finite outputs, a map with points)."""

from __future__ import annotations

import numpy as np
import open3d as o3d
import pytest
from gt_backend import GroundTruthModel, GroundTruthPairwiseModel, GroundTruthStreamingModel
from node_fixtures import NodeRig
from ros_harness import RosHarness

from fin3r_lib.errors import InputError
from fin3r_lib.geometry import unproject_depth
from fin3r_ros.conversions import cloud_to_arrays, depth_image_to_array, pose_to_matrix, transform_to_matrix
from fin3r_ros.demo import random_model
from fin3r_ros.tf_publisher import MAP_FROM_OPTICAL_WORLD, nearest_rigid, to_map

FPS = 30.0
FRAMES = range(12)


@pytest.fixture
def ros():
    with RosHarness() as harness:
        yield harness


def _truth_cloud(data: dict[str, np.ndarray], frames) -> o3d.geometry.PointCloud:
    """Ground-truth depth of `frames` in frame 0's optical frame."""
    pts = []
    for i in frames:
        depth = data["depth_mm"][i] / 1000.0
        depth[data["depth_mm"][i] == 0] = np.nan
        p = unproject_depth(depth, data["K"], np.linalg.inv(data["poses"][0]) @ data["poses"][i]).reshape(-1, 3)
        pts.append(p[np.isfinite(p).all(1)])
    return o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.concatenate(pts)))


def _median_distance(points: np.ndarray, truth: o3d.geometry.PointCloud) -> float:
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    return float(np.median(np.asarray(cloud.compute_point_cloud_distance(truth))))


def _map_to_optical(points: np.ndarray) -> np.ndarray:
    """Undo the fixed map rotation: (N, 3) map points -> first optical frame."""
    return points @ MAP_FROM_OPTICAL_WORLD[:3, :3]


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend",
    [
        # streaming: the session only re-bases the truth; windowed: each context is Sim(3)-aligned onto
        # the placed frames; pairwise: each frame's pair with the last keyframe is Sim(3)-aligned onto
        # that keyframe's stored points. All must give the (rigid) truth back to 1e-6.
        pytest.param(GroundTruthStreamingModel, id="streaming"),
        pytest.param(GroundTruthModel, id="windowed"),
        pytest.param(GroundTruthPairwiseModel, id="pairwise"),
    ],
)
def test_ground_truth_comes_back_through_the_node(ros, seven_scenes, backend) -> None:
    # the data's rotations are orthonormal to ~5e-6 only: serve their nearest rotations, so truth is rigid
    rigid = np.stack([nearest_rigid(p) for p in seven_scenes["poses"]])
    model = backend(seven_scenes["rgb"], seven_scenes["depth_mm"], rigid, seven_scenes["K"])
    rig = NodeRig(ros, model, context_size=4, voxel_size=0.01)
    for i in FRAMES:
        rig.send(seven_scenes["rgb"][i], 10.0 + i / FPS, k=seven_scenes["K"])
    assert rig.errors() == 0
    if backend is GroundTruthPairwiseModel:  # the node ran the pairwise kind: every later frame was paired
        assert model.pair_calls == len(FRAMES) - 1
    assert ros.spin_until(lambda: len(rig.got["/tf"]) == len(FRAMES), timeout=5.0)

    truth = [np.linalg.inv(rigid[0]) @ rigid[i] for i in FRAMES]
    undo = np.linalg.inv(MAP_FROM_OPTICAL_WORLD)
    tf_poses = [undo @ transform_to_matrix(m.transforms[0]) for m in rig.got["/tf"]]
    pose_poses = [undo @ pose_to_matrix(m) for m in rig.got["pose"]]
    np.testing.assert_allclose(np.stack(tf_poses), np.stack(truth), atol=1e-6)
    np.testing.assert_allclose(np.stack(pose_poses), np.stack(tf_poses), atol=1e-12)
    session_poses = [pose for _, pose in rig.node.session.trajectory]
    np.testing.assert_allclose(np.stack(tf_poses), np.stack(session_poses), atol=1e-9)
    # the map frame is z up: the camera's optical z (forward) is the map's x, its y (down) the map's -z
    np.testing.assert_allclose(
        transform_to_matrix(rig.got["/tf"][0].transforms[0])[:3, :3], MAP_FROM_OPTICAL_WORLD[:3, :3], atol=1e-9
    )

    truth_cloud = _truth_cloud(seven_scenes, FRAMES)
    map_points = cloud_to_arrays(rig.got["map"][-1])["points"]
    assert len(map_points) > 10_000
    assert _median_distance(_map_to_optical(map_points), truth_cloud) <= 0.01
    frame_points = cloud_to_arrays(rig.got["points"][-1])["points"]
    assert _median_distance(_map_to_optical(frame_points), truth_cloud) <= 0.01
    last = FRAMES[-1]
    depth = depth_image_to_array(rig.got["depth"][-1])
    valid = seven_scenes["depth_mm"][last] > 0
    np.testing.assert_allclose(depth[valid], seven_scenes["depth_mm"][last][valid] / 1000.0, atol=1e-6)


@pytest.mark.parametrize("name", ["vggt-tiny", "dust3r-tiny"])
def test_tiny_backbone_through_the_node(ros, seven_scenes, name) -> None:
    model = random_model(name)
    rig = NodeRig(ros, model, input_max_side=160, output_resolution="input", context_size=2, keyframe_min_flow_px=0.0)
    for i in (0, 5, 10):
        rig.send(seven_scenes["rgb"][i], 1.0 + i / FPS, k=seven_scenes["K"])
    assert rig.errors() == 0
    depth = depth_image_to_array(rig.got["depth"][-1])
    assert depth.shape == (480, 640) and np.isfinite(depth).mean() > 0.5
    info = rig.got["depth/camera_info"][-1]
    assert (info.height, info.width) == (480, 640) and np.isfinite(info.k).all() and info.k[0] > 0
    assert all(np.isfinite(pose_to_matrix(p)).all() for p in rig.got["pose"])
    assert ros.spin_until(lambda: len(rig.got["/tf"]) == 3, timeout=5.0)
    assert all(np.isfinite(transform_to_matrix(m.transforms[0])).all() for m in rig.got["/tf"])
    map_points = cloud_to_arrays(rig.got["map"][-1])["points"]
    assert len(map_points) > 0 and np.isfinite(map_points).all()


def test_input_resolution_depth_is_the_model_depth_at_each_pixel_centre(seven_scenes) -> None:
    published = {}
    for resolution in ("model", "input"):
        with RosHarness() as ros:
            rig = NodeRig(ros, random_model("vggt-tiny"), input_max_side=100, output_resolution=resolution)
            rig.send(seven_scenes["rgb"][0], 1.0, k=seven_scenes["K"])
            published[resolution] = depth_image_to_array(rig.got["depth"][-1])
    small, big = published["model"], published["input"]
    assert big.shape == (480, 640) and 480 % small.shape[0] and 640 % small.shape[1]  # not an integer factor
    rows = np.floor((np.arange(480) + 0.5) * small.shape[0] / 480).astype(int)
    cols = np.floor((np.arange(640) + 0.5) * small.shape[1] / 640).astype(int)
    np.testing.assert_array_equal(big, small[rows][:, cols])


def test_map_rotation_is_rep105_and_rejects_non_rotations() -> None:
    forward, right, down = np.eye(3)[2], np.eye(3)[0], np.eye(3)[1]  # optical axes of the first camera
    rot = to_map(np.eye(4))[:3, :3]
    np.testing.assert_array_equal([rot @ forward, rot @ right, rot @ down], [[1, 0, 0], [0, -1, 0], [0, 0, -1]])
    with pytest.raises(InputError, match="expected a camera pose with a rotation"):
        to_map(np.diag([2.0, 2.0, 2.0, 1.0]))  # a Sim(3) scale is not a rotation
    with pytest.raises(InputError, match="expected a camera pose with a rotation"):
        to_map(np.diag([1.0, 1.0, -1.0, 1.0]))  # a reflection
