"""The ground-truth backend through the evaluator on the real 7-Scenes frames: zero errors, and known
perturbations (depth x1.1, depth noise, pose noise) give the values computed here independently."""

from __future__ import annotations

import numpy as np
import pytest
from gt_backend import GroundTruthModel, GroundTruthStreamingModel

from fin3r_lib.datasets import open_sequence
from fin3r_lib.evaluation import SystemEvaluator, evaluate_depth, evaluate_multiview
from fin3r_lib.evaluation.reference_cloud import ReferenceCloud
from fin3r_lib.geometry import umeyama_sim3
from fin3r_lib.runner import Runner, RunnerOptions
from fin3r_lib.session import SessionConfig

FRAMES = 12


@pytest.fixture(scope="module")
def frames(seven_scenes_dir):
    return list(open_sequence(seven_scenes_dir))[:FRAMES]


def _served(seven_scenes, depth_mm=None, poses=None, model=GroundTruthModel):
    data = {k: v[:FRAMES] for k, v in seven_scenes.items() if k != "K"}
    return model(
        data["rgb"],
        data["depth_mm"] if depth_mm is None else depth_mm,
        data["poses"] if poses is None else poses,
        seven_scenes["K"],
    )


def test_reader_gives_the_fixture_frames(frames, seven_scenes):
    assert [f.rgb.shape for f in frames] == [(480, 640, 3)] * FRAMES
    for f, mm, pose in zip(frames, seven_scenes["depth_mm"], seven_scenes["poses"], strict=False):
        assert np.array_equal(np.isnan(f.depth), mm == 0)
        np.testing.assert_allclose(f.depth[mm > 0], mm[mm > 0] / 1000.0, rtol=1e-6)
        assert np.array_equal(f.cam_to_world, pose)


def test_model_level_truth_gives_zero_errors(frames, seven_scenes):
    model = _served(seven_scenes)
    mono = evaluate_depth(model, frames[:3], alignment="none")
    assert (mono["abs_rel"], mono["rmse"], mono["delta1"], mono["frames"]) == (0.0, 0.0, 1.0, 3)
    multi = evaluate_multiview(model, frames[:8], window=4)
    assert multi["windows"] == 2 and multi["video_abs_rel"] == pytest.approx(0.0, abs=1e-6)
    for key in ("acc", "comp", "ate"):
        assert multi[key] < 1e-4  # the 7-Scenes rotations are off SO(3) by ~1e-4; the backend serves them rigid
    assert multi["auc@5"] > 99.9 and multi["nc"] > 0.999


def test_model_level_scaled_and_noisy_depth_give_the_expected_errors(frames, seven_scenes):
    mm = seven_scenes["depth_mm"][:FRAMES]
    scaled = np.round(mm * 1.1).astype(np.uint16)
    noise = np.random.default_rng(0).uniform(-0.05, 0.05, mm.shape)
    noisy = np.round(mm * (1 + noise)).astype(np.uint16)
    for served in (scaled, noisy):
        valid = (mm[:2] > 0) & (served[:2] > 0)
        rel = np.abs(served[:2][valid] / mm[:2][valid] - 1)
        per_frame = [np.mean(np.abs(s[v] / m[v] - 1)) for s, m, v in zip(served[:2], mm[:2], valid, strict=True)]
        got = evaluate_depth(_served(seven_scenes, depth_mm=served), frames[:2], alignment="none")
        assert got["abs_rel"] == pytest.approx(np.mean(per_frame), rel=1e-5)
        assert got["delta1"] == 1.0 and rel.max() < 0.11
    # median scale alignment undoes the x1.1 exactly (up to the mm rounding)
    assert evaluate_depth(_served(seven_scenes, depth_mm=scaled), frames[:2])["abs_rel"] < 1e-3


@pytest.mark.parametrize("backend", [GroundTruthModel, GroundTruthStreamingModel], ids=["windowed", "streaming"])
def test_system_level_truth_gives_zero_errors(frames, seven_scenes, backend):
    evaluator = SystemEvaluator(voxel_size=0.01)
    every_frame_a_keyframe = RunnerOptions(session=SessionConfig(keyframe_min_flow_px=0.0, voxel_size=0.01))
    Runner(_served(seven_scenes, model=backend), every_frame_a_keyframe, [evaluator]).run(frames)
    r = evaluator.results
    assert r["frames"] == FRAMES and r["skipped"] == 0
    assert r["depth"]["abs_rel"] == pytest.approx(0.0, abs=1e-6) and r["depth"]["delta1"] == 1.0
    assert r["ate"]["rmse"] < 1e-4 and r["rpe"]["rot_max"] < 0.05
    # map voxel centroids vs GT voxel centroids of other grids: within half a voxel
    assert r["map"]["acc"] < 0.005 and r["map"]["comp"] < 0.005 and r["map_scale"] == pytest.approx(1.0, abs=1e-3)
    assert r["latency_total"]["mean_ms"] > 0 and np.isfinite(r["overhead_ratio"])


def test_system_level_pose_noise_gives_the_expected_ate(frames, seven_scenes):
    rng = np.random.default_rng(1)
    poses = seven_scenes["poses"][:FRAMES].copy()
    poses[:, :3, 3] += rng.normal(0, 0.01, (FRAMES, 3))
    evaluator = SystemEvaluator()
    Runner(_served(seven_scenes, poses=poses, model=GroundTruthStreamingModel), sinks=[evaluator]).run(frames)
    truth = seven_scenes["poses"][:FRAMES, :3, 3]
    s, r, t = umeyama_sim3(poses[:, :3, 3], truth)
    residual = np.linalg.norm(s * poses[:, :3, 3] @ r.T + t - truth, axis=1)
    assert evaluator.results["ate"]["rmse"] == pytest.approx(np.sqrt(np.mean(residual**2)), rel=1e-3)
    assert evaluator.results["ate"]["rmse"] > 0.005


def test_system_level_without_normals_gives_the_same_distances_and_no_nc(frames, seven_scenes):
    runs = {}
    for normals in (True, False):
        evaluator = SystemEvaluator(normals=normals)
        Runner(_served(seven_scenes, model=GroundTruthStreamingModel), sinks=[evaluator]).run(frames)
        runs[normals] = evaluator.results["map"]
    assert {k: v for k, v in runs[True].items() if not k.startswith("nc")} == runs[False]
    assert runs[True]["nc"] > 0.5 and not any(k.startswith("nc") for k in runs[False])


def test_reference_cloud_buffered_fusion_equals_per_frame_fusion_and_plain_voxel_means(frames):
    per_frame, buffered = ReferenceCloud(0.05, flush_points=1), ReferenceCloud(0.05)
    for frame in frames[:6]:
        per_frame.add(frame)
        buffered.add(frame)
    assert np.array_equal(per_frame.points(), buffered.points())
    # independent: every valid GT point of every 2nd pixel, averaged per 5 cm voxel
    pts = []
    for f in frames[:6]:
        d = np.asarray(f.depth, np.float64)[::2, ::2]
        v, u = np.mgrid[0 : f.size[0] : 2, 0 : f.size[1] : 2]
        k = np.asarray(f.intrinsics, np.float64)
        cam = np.stack([(u - k[0, 2]) / k[0, 0] * d, (v - k[1, 2]) / k[1, 1] * d, d], -1)[d > 0]
        pts.append(cam @ np.asarray(f.cam_to_world)[:3, :3].T + np.asarray(f.cam_to_world)[:3, 3])
    pts = np.concatenate(pts)
    _, inverse, counts = np.unique(np.floor(pts / 0.05), axis=0, return_inverse=True, return_counts=True)
    means = np.stack([np.bincount(inverse.ravel(), pts[:, i]) for i in range(3)], 1) / counts[:, None]
    got = buffered.points()
    assert len(got) == len(means)
    assert np.allclose(np.sort(got, axis=0), np.sort(means, axis=0), atol=1e-6)
