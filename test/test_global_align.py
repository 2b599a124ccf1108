"""Global alignment of a pair graph: ground-truth pairs recover known poses from a perturbed start."""

from __future__ import annotations

import numpy as np
import pytest
from gt_backend import GroundTruthPairwiseModel
from scipy.spatial.transform import Rotation

from fin3r_lib.data.frame import Frame
from fin3r_lib.geometry import unproject_pixels
from fin3r_lib.global_align import AlignSettings, GlobalAlignmentError, PairEdge, PairGraph, align_pair_graph
from fin3r_lib.runner import Runner, RunnerOptions
from fin3r_lib.session import SessionConfig

NODES = list(range(0, 50, 5))  # 10 keyframes, 0.15 s apart at 30 Hz
WINDOW = 3


def _pixels(height: int, width: int, stride: int = 6) -> tuple[np.ndarray, np.ndarray]:
    v, u = np.mgrid[3:height:stride, 3:width:stride]
    return v.reshape(-1), u.reshape(-1)


def _rotation_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(Rotation.from_matrix(a[:3, :3].T @ b[:3, :3]).magnitude()))


def _truth_graph(data: dict[str, np.ndarray], rng: np.random.Generator):
    """Node points at an unknown scale each, and the ground-truth pair of every (node, earlier node in the window)."""
    model = GroundTruthPairwiseModel.from_fixture(data, scale_range=(0.5, 2.0), seed=3)
    v, u = _pixels(*data["rgb"].shape[1:3])
    node_scale = rng.uniform(0.7, 1.4, len(NODES))
    points = []
    for scale, i in zip(node_scale, NODES, strict=True):
        depth = data["depth_mm"][i][v, u].astype(np.float64) / 1000.0
        depth[depth == 0] = np.nan
        points.append(unproject_pixels(u.astype(float), v.astype(float), depth * scale, data["K"]))
    edges = []
    for n in range(len(NODES)):
        for m in range(max(0, n - WINDOW), n):
            pair = model.predict_pair(data["rgb"][NODES[n]], data["rgb"][NODES[m]])
            edges.append(
                PairEdge(
                    n,
                    m,
                    pair.frame.world_points[v, u].astype(np.float64),
                    pair.other_points[v, u].astype(np.float64),
                    pair.frame.depth_conf[v, u].astype(np.float64),
                    pair.other_conf[v, u].astype(np.float64),
                )
            )
    truth = model.relative_poses()[NODES]
    truth[:, :3, 3] *= node_scale[0]  # the world's unit is node 0's: its depth scale stays 1
    return np.stack(points), edges, truth, node_scale


def _perturbed(truth: np.ndarray, rng: np.random.Generator, degrees: float, metres: float) -> np.ndarray:
    start = truth.copy()
    for pose in start[1:]:  # node 0 defines the world
        turn = Rotation.from_rotvec(rng.normal(size=3) * np.radians(degrees) / np.sqrt(3)).as_matrix()
        pose[:3, :3] = turn @ pose[:3, :3]
        pose[:3, 3] += rng.normal(size=3) * metres / np.sqrt(3)
    return start


def test_alignment_recovers_known_poses_and_scales_from_a_perturbed_start(small_scenes) -> None:
    rng = np.random.default_rng(0)
    points, edges, truth, node_scale = _truth_graph(small_scenes, rng)
    start = _perturbed(truth, rng, degrees=4.0, metres=0.08)
    start_rot = max(_rotation_deg(a, b) for a, b in zip(start, truth, strict=True))
    start_trans = np.abs(start[:, :3, 3] - truth[:, :3, 3]).max()

    result = align_pair_graph(points, start, edges)

    assert result.edges_used == len(edges) == sum(min(n, WINDOW) for n in range(len(NODES)))
    rot_err = max(_rotation_deg(a, b) for a, b in zip(result.poses, truth, strict=True))
    trans_err = np.abs(result.poses[:, :3, 3] - truth[:, :3, 3]).max()
    assert start_rot > 1.0 and start_trans > 0.02  # the start is far off
    assert rot_err < 0.05, (rot_err, start_rot)
    assert trans_err < 2e-3, (trans_err, start_trans)
    # each node's points are at 1 / (its unknown scale) relative to node 0's
    np.testing.assert_allclose(result.scales, node_scale[0] / node_scale, rtol=2e-3)
    np.testing.assert_allclose(result.poses[0], start[0], atol=1e-12)
    assert result.loss_final < 0.02 * result.loss_initial


def test_no_usable_edge_gives_the_start_back(small_scenes) -> None:
    rng = np.random.default_rng(1)
    points, edges, truth, _ = _truth_graph(small_scenes, rng)
    empty = [PairEdge(e.i, e.j, e.points_i, e.points_j, np.ones_like(e.conf_i), e.conf_j) for e in edges]
    result = align_pair_graph(points, truth, empty, AlignSettings(iterations=5))  # confidence 1: weight log(1) = 0
    assert result.edges_used == 0
    np.testing.assert_array_equal(result.poses, truth)
    np.testing.assert_array_equal(result.scales, np.ones(len(truth)))


def test_pair_graph_through_the_runner_keeps_the_truth(small_scenes) -> None:
    """The chain fed ground truth (each pair at its own scale) is exact; aligning its graph keeps every pose."""
    model = GroundTruthPairwiseModel.from_fixture(small_scenes, scale_range=(0.5, 2.0), seed=2)
    config = SessionConfig(keyframe_min_flow_px=8.0, min_confidence=1.0, confidence_top_fraction=1.0)
    graph = PairGraph(model, config, window=WINDOW, samples=512)
    runner = Runner(model, RunnerOptions(session=config), [graph])
    frames = [Frame(rgb=img, stamp=i / 30.0, index=i) for i, img in enumerate(small_scenes["rgb"][::2])]
    runner.process(frames[0])
    unit = model.last_scale  # the first frame's (I, I) pair sets the world's unit
    for frame in frames[1:]:
        runner.process(frame)
    assert runner.frames == len(frames)
    aligned = graph.align()

    keyframes = graph.nodes
    assert 3 < len(keyframes) < len(frames)
    assert aligned.edges == sum(min(n, WINDOW) for n in range(len(keyframes)))
    truth = model.relative_poses()[::2]
    truth[:, :3, 3] *= unit
    assert aligned.stamps_ns == [round(f.stamp * 1e9) for f in frames]
    # the optimiser (Adam on an L1-type loss) settles within its final step sizes of the exact start
    assert max(_rotation_deg(a, b) for a, b in zip(aligned.poses, truth, strict=True)) < 0.05
    np.testing.assert_allclose(aligned.poses[:, :3, 3], truth[:, :3, 3], atol=2e-3 * unit)
    np.testing.assert_allclose(aligned.depth_scales, 1.0, rtol=2e-3)
    assert len(aligned.points) > 1000 and np.isfinite(aligned.points).all()


def test_pair_graph_refuses_a_model_that_is_not_pairwise(small_scenes) -> None:
    from gt_backend import GroundTruthModel

    with pytest.raises(GlobalAlignmentError, match="needs a pairwise model"):
        PairGraph(GroundTruthModel.from_fixture(small_scenes), SessionConfig())
