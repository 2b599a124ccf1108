"""Session behaviours: keyframe gate, bounded context/map/trajectory, resets, bad input and bad model output."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gt_backend import GroundTruthModel

from fin3r_lib.data.frame import Frame
from fin3r_lib.errors import InputError
from fin3r_lib.geometry import sim3_matrix
from fin3r_lib.session import (
    AlignmentError,
    KeyframeGate,
    ReconstructionSession,
    SessionConfig,
    VoxelMap,
    confidence_mask,
)
from fin3r_lib.session.align import fit_sim3_robust


def _session(data: dict[str, np.ndarray], **config: object) -> tuple[GroundTruthModel, ReconstructionSession]:
    model = GroundTruthModel.from_fixture(data)
    defaults = {"keyframe_min_flow_px": 5.0, "confidence_top_fraction": 1.0}
    return model, ReconstructionSession(model, SessionConfig(**{**defaults, **config}))  # type: ignore[arg-type]


def test_gate_rejects_duplicates_accepts_motion_and_max_interval(seven_scenes) -> None:
    rgb = seven_scenes["rgb"]
    gate = KeyframeGate(min_flow_px=15.0, max_interval_s=2.0)
    assert gate.decide(rgb[0], 0.0).reason == "first"
    gate.accept(rgb[0], 0.0)
    same = gate.decide(rgb[0].copy(), 0.5)
    assert not same.is_keyframe and same.reason == "duplicate" and same.flow_px < 0.5
    assert not gate.decide(rgb[1], 0.1).is_keyframe  # ~8 px at 30 Hz: below the threshold
    moved = gate.decide(rgb[10], 0.3)
    assert moved.is_keyframe and moved.reason == "motion" and moved.flow_px > 15.0
    late = gate.decide(rgb[0], 2.0)
    assert late.is_keyframe and late.reason == "interval"
    gate.reset()
    assert gate.decide(rgb[0], 3.0).reason == "first"


def test_parked_camera_adds_one_keyframe_and_a_steady_map(small_scenes) -> None:
    _, session = _session(small_scenes)
    results = [session.process(Frame(small_scenes["rgb"][0], i / 30)) for i in range(20)]
    assert [r.is_keyframe for r in results] == [True] + [False] * 19
    assert session.num_keyframes == 1
    map_size = len(session.map_cloud()[0])
    session.process(Frame(small_scenes["rgb"][0], 1.0))
    assert len(session.map_cloud()[0]) == map_size
    assert session.process(Frame(small_scenes["rgb"][0], 2.5)).is_keyframe  # max interval reached


def test_context_and_trajectory_stay_bounded(small_scenes) -> None:
    model, session = _session(small_scenes, context_size=3, max_trajectory=5, keyframe_min_flow_px=0.0)
    for i, img in enumerate(small_scenes["rgb"][:12]):
        session.process(Frame(img, i / 30))
        assert model.last_call_size == min(i, 3) + 1
    assert session.num_keyframes == 12
    stamps = [t for t, _ in session.trajectory]
    assert stamps == pytest.approx([i / 30 for i in range(7, 12)])


def test_time_going_backwards_resets_the_session(small_scenes) -> None:
    model, session = _session(small_scenes)
    for i in range(10):
        assert not session.process(Frame(small_scenes["rgb"][i], 10.0 + i / 30)).was_reset
    result = session.process(Frame(small_scenes["rgb"][5], 10.0))
    assert result.was_reset and result.is_keyframe
    np.testing.assert_allclose(result.frame.cam_to_world, np.eye(4), atol=1e-12)
    assert session.num_keyframes == 1 and len(session.trajectory) == 1
    # the new world is frame 5's camera: later frames follow the truth relative to it
    later = session.process(Frame(small_scenes["rgb"][8], 10.1))
    truth = np.linalg.inv(model.poses[5]) @ model.poses[8]
    np.testing.assert_allclose(later.frame.cam_to_world, truth, atol=1e-6)


def test_time_jump_kept_when_reset_disabled(small_scenes) -> None:
    _, session = _session(small_scenes, reset_on_time_jump=False)
    session.process(Frame(small_scenes["rgb"][0], 5.0))
    result = session.process(Frame(small_scenes["rgb"][10], 1.0))
    assert not result.was_reset and len(session.trajectory) == 2


def test_reset_on_demand_starts_a_new_world(small_scenes) -> None:
    _, session = _session(small_scenes)
    for i in range(5):
        session.process(Frame(small_scenes["rgb"][i * 5], i / 30))
    session.reset()
    assert session.num_keyframes == 0 and session.trajectory == [] and len(session.map_cloud()[0]) == 0
    result = session.process(Frame(small_scenes["rgb"][30], 0.0))
    np.testing.assert_allclose(result.frame.cam_to_world, np.eye(4), atol=1e-12)


def test_failed_frames_leave_the_session_unchanged(small_scenes) -> None:
    model, session = _session(small_scenes)
    session.process(Frame(small_scenes["rgb"][0], 0.0))
    with pytest.raises(InputError, match="unknown"):
        session.process(Frame(np.zeros_like(small_scenes["rgb"][0]), 0.1))
    with pytest.raises(InputError, match=r"expected frames of size \(120, 160\)"):
        session.process(Frame(np.zeros((60, 80, 3), np.uint8), 0.2))
    with pytest.raises(InputError, match="RGB uint8"):
        session.process(Frame(np.zeros((120, 160), np.uint8), 0.3))
    assert len(session.trajectory) == 1
    result = session.process(Frame(small_scenes["rgb"][10], 0.4))
    np.testing.assert_allclose(result.frame.cam_to_world, model.relative_poses()[10], atol=1e-6)


class _NanModel(GroundTruthModel):
    """Ground truth, except that frames after the first come back as NaN (a diverged model)."""

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        pred = super().forward(images)
        if images.shape[1] > 1:
            pred = {k: torch.full_like(v, float("nan")) for k, v in pred.items()}
        return pred


def test_non_finite_model_output_raises_alignment_error(small_scenes) -> None:
    session = ReconstructionSession(_NanModel.from_fixture(small_scenes))
    session.process(Frame(small_scenes["rgb"][0], 0.0))
    with pytest.raises(AlignmentError, match="finite camera pose"):
        session.process(Frame(small_scenes["rgb"][10], 0.1))
    assert len(session.trajectory) == 1 and session.num_keyframes == 1


def test_points_are_confidence_filtered() -> None:
    depth = np.array([[1.0, np.nan, 2.0, -1.0], [3.0, 4.0, 5.0, 6.0]], np.float32)
    conf = np.array([[1.1, 9.0, 1.5, 9.0], [2.0, 3.0, 4.0, 5.0]], np.float32)
    assert confidence_mask(depth, conf, 1.0, 1.0).tolist() == [[True, False, True, False], [True, True, True, True]]
    assert confidence_mask(depth, conf, 1.2, 1.0).sum() == 5
    top = confidence_mask(depth, conf, 1.0, 0.5)
    assert top.tolist() == [[False, False, False, False], [False, True, True, True]]


def test_session_points_follow_the_confidence_threshold(small_scenes) -> None:
    _, keep_all = _session(small_scenes, min_confidence=1.0)
    _, keep_none = _session(small_scenes, min_confidence=10.0)
    frame = Frame(small_scenes["rgb"][0], 0.0)
    all_points = keep_all.process(frame)
    valid = int((small_scenes["depth_mm"][0] > 0).sum())
    assert len(all_points.points) == len(all_points.colors) == valid
    assert all_points.points.dtype == np.float32 and all_points.colors.dtype == np.uint8
    assert len(keep_none.process(frame).points) == 0 and len(keep_none.map_cloud()[0]) == 0


def test_voxel_map_averages_each_voxel() -> None:
    vmap = VoxelMap(voxel_size=1.0, max_points=10)
    pts = np.array([[0.1, 0.1, 0.1], [0.3, 0.5, 0.9], [1.5, 0.5, 0.5], [-0.5, 0.5, 0.5]], np.float32)
    cols = np.array([[0, 0, 0], [100, 50, 20], [255, 255, 255], [9, 9, 9]], np.uint8)
    vmap.add(pts, cols)
    vmap.add(np.array([[0.5, 0.3, 0.5]], np.float32), np.array([[200, 100, 40]], np.uint8))
    points, colors = vmap.cloud()
    assert len(points) == 3
    first = np.argmin(np.abs(points - [0.3, 0.3, 0.5]).sum(1))
    np.testing.assert_allclose(points[first], [0.3, 0.3, 0.5], atol=1e-6)
    assert colors[first].tolist() == [100, 50, 20]


def test_voxel_map_drops_least_recently_seen_voxels_first() -> None:
    rng = np.random.default_rng(0)
    vmap = VoxelMap(voxel_size=0.01, max_points=1000)
    for i in range(20):
        batch = rng.uniform(0, 1, (300, 3)).astype(np.float32) + np.array([i, 0, 0], np.float32)
        vmap.add(batch, np.full((300, 3), i, np.uint8))
        assert len(vmap) <= 1000
    points, colors = vmap.cloud()
    assert len(points) == 1000
    assert set(np.unique(colors[:, 0]).tolist()) <= set(range(16, 20))  # newest batches survive
    assert (colors[:, 0] == 19).sum() == 300


@pytest.mark.parametrize(
    "bad",
    [
        {"context_size": 0},
        {"voxel_size": 0.0},
        {"confidence_top_fraction": 0.0},
        {"map_pixel_stride": 1.5},
        {"align_trim": 1.0},
        {"keyframe_min_flow_px": -1.0},
    ],
)
def test_config_rejects_bad_values(bad) -> None:
    name = next(iter(bad))
    with pytest.raises(InputError, match=f"SessionConfig.{name}: expected"):
        SessionConfig(**bad)


def test_sim3_fit_ignores_outliers_and_invalid_points() -> None:
    rng = np.random.default_rng(3)
    src = rng.normal(size=(500, 3))
    angle = 0.7
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    dst = 2.5 * src @ rot.T + [1.0, -2.0, 0.5]
    dst[:40] += rng.normal(scale=5.0, size=(40, 3))  # 8% gross outliers
    src[40:50] = np.nan  # invalid predictions
    weights = np.ones(500)
    weights[50:60] = 0.0  # masked by confidence
    fitted = fit_sim3_robust(src, dst, weights, trim=0.2)
    np.testing.assert_allclose(fitted, sim3_matrix(2.5, rot, [1.0, -2.0, 0.5]), atol=1e-9)
    with pytest.raises(AlignmentError, match="at least 16 valid point pairs"):
        fit_sim3_robust(src[40:70], dst[40:70], weights[40:70])  # 10 valid pairs


def test_voxel_map_matches_a_per_voxel_reference_over_many_batches():
    """Sorted-key merging gives the same centroids and colours as plain per-voxel averaging."""
    rng = np.random.default_rng(7)
    vmap = VoxelMap(voxel_size=0.1, max_points=10**6)
    sums: dict[tuple[int, int, int], np.ndarray] = {}
    for _ in range(6):
        pts = rng.uniform(-1, 1, (500, 3))
        cols = rng.integers(0, 256, (500, 3), dtype=np.uint8)
        vmap.add(pts, cols)
        for p, c in zip(pts, cols, strict=True):
            key = tuple(np.floor(p / 0.1).astype(int))
            acc = sums.setdefault(key, np.zeros(7))
            acc += np.concatenate([p, c, [1.0]])
    got_pts, got_cols = vmap.cloud()
    ref = np.array([acc for _, acc in sorted(sums.items())])
    order = np.lexsort(np.floor(got_pts / 0.1).astype(int).T[::-1])
    assert len(vmap) == len(sums)
    np.testing.assert_allclose(got_pts[order], ref[:, :3] / ref[:, 6:], atol=1e-6)
    np.testing.assert_array_equal(got_cols[order], np.clip(np.round(ref[:, 3:6] / ref[:, 6:]), 0, 255))
