"""The session fed ground truth must give the truth back: trajectory to 1e-6, map on the true surface."""

from __future__ import annotations

import numpy as np
import open3d as o3d
import pytest
from gt_backend import GroundTruthModel, GroundTruthPairwiseModel, GroundTruthStreamingModel

from fin3r_lib.data.frame import Frame
from fin3r_lib.geometry import unproject_depth
from fin3r_lib.session import ReconstructionSession, SessionConfig

FPS = 30.0


def _frames(data: dict[str, np.ndarray]) -> list[Frame]:
    return [Frame(rgb=img, stamp=i / FPS, intrinsics=data["K"], index=i) for i, img in enumerate(data["rgb"])]


def _truth_cloud(data: dict[str, np.ndarray]) -> o3d.geometry.PointCloud:
    """Every frame's ground-truth depth (stride 2) in frame 0's camera frame."""
    rel = GroundTruthModel.from_fixture(data).relative_poses()
    pts = []
    for depth_mm, pose in zip(data["depth_mm"], rel, strict=True):
        d = depth_mm.astype(np.float64) / 1000.0
        d[depth_mm == 0] = np.nan
        p = unproject_depth(d, data["K"], pose)[::2, ::2].reshape(-1, 3)
        pts.append(p[np.isfinite(p).all(1)])
    return o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.concatenate(pts)))


def _median_error_to_truth(points: np.ndarray, truth: o3d.geometry.PointCloud) -> float:
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    return float(np.median(np.asarray(cloud.compute_point_cloud_distance(truth))))


@pytest.fixture(scope="module")
def truth_cloud(seven_scenes: dict[str, np.ndarray]) -> o3d.geometry.PointCloud:
    return _truth_cloud(seven_scenes)


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend",
    [
        pytest.param(lambda d: GroundTruthModel.from_fixture(d, scale_range=(0.3, 3.0), seed=1), id="windowed-scaled"),
        pytest.param(GroundTruthStreamingModel.from_fixture, id="streaming"),
        pytest.param(
            lambda d: GroundTruthPairwiseModel.from_fixture(d, scale_range=(0.3, 3.0), seed=1), id="pairwise-scaled"
        ),
    ],
)
def test_session_reproduces_ground_truth(seven_scenes, truth_cloud, backend) -> None:
    config = SessionConfig(context_size=3, confidence_top_fraction=1.0, min_confidence=1.0)
    model = backend(seven_scenes)
    session = ReconstructionSession(model, config)
    frames = _frames(seven_scenes)
    results = [session.process(frames[0])]
    unit = model.last_scale  # the session world's unit is that of its first prediction (1.0 when metric)
    results += [session.process(f) for f in frames[1:]]

    truth = model.relative_poses()
    truth[:, :3, 3] *= unit
    poses = np.stack([pose for _, pose in session.trajectory])
    assert len(poses) == len(truth)
    np.testing.assert_allclose(poses, truth, atol=1e-6)
    for r, t in zip(results, truth, strict=True):
        np.testing.assert_allclose(r.frame.cam_to_world, t, atol=1e-6)

    # at 30 Hz the camera moves slowly: a proper subset of frames become keyframes
    assert results[0].is_keyframe
    assert 1 < session.num_keyframes < len(results)
    assert session.num_keyframes == sum(r.is_keyframe for r in results)

    # the depth comes back in the session world's unit
    d0 = seven_scenes["depth_mm"][-1].astype(np.float32) / 1000.0 * unit
    valid = seven_scenes["depth_mm"][-1] > 0
    np.testing.assert_allclose(results[-1].frame.depth[valid], d0[valid], rtol=1e-5)

    map_points, map_colors = session.map_cloud()
    assert map_points.dtype == np.float32 and map_colors.dtype == np.uint8
    assert len(map_points) > 10_000
    assert _median_error_to_truth(map_points / unit, truth_cloud) <= 0.01
    assert _median_error_to_truth(results[-1].points / unit, truth_cloud) <= 0.01
