"""The session with the real (tiny, random-weight) backbones: VGGT windowed, CUT3R streaming."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fin3r_lib.data.frame import Frame
from fin3r_lib.models import ReconstructionModel
from fin3r_lib.session import ReconstructionSession, SessionConfig
from fin3r_ros.demo import random_model


def _tiny(name: str) -> ReconstructionModel:
    """Random weights made usable by `load_model` (VGGT: a positive field of view; CUT3R and DUSt3R: the pinhole
    prior of `fin3r_lib.models.random_heads`), so any seed gives positive focal lengths."""
    return random_model(name)


@pytest.fixture(scope="module")
def small_rgb(seven_scenes: dict[str, np.ndarray]) -> np.ndarray:
    """Six real frames, 10 apart, at a quarter size."""
    return np.stack([cv2.resize(img, (160, 120), interpolation=cv2.INTER_AREA) for img in seven_scenes["rgb"][::10]])


def _run(session: ReconstructionSession, rgb: np.ndarray) -> list:
    return [session.process(Frame(img, i / 30)) for i, img in enumerate(rgb)]


@pytest.mark.parametrize("name", ["vggt-tiny", "cut3r-tiny", "dust3r-tiny"])
def test_tiny_backbone_runs_through_the_session(name, small_rgb) -> None:
    model = _tiny(name)
    config = SessionConfig(context_size=2, keyframe_min_flow_px=0.0, min_confidence=1.0, confidence_top_fraction=1.0)
    session = ReconstructionSession(model, config)
    results = _run(session, small_rgb)
    np.testing.assert_allclose(results[0].frame.cam_to_world, np.eye(4), atol=1e-6)
    for r in results:
        f = r.frame
        assert f.depth.shape == f.depth_conf.shape == (120, 160) and f.world_points.shape == (120, 160, 3)
        assert np.isfinite(f.depth).all() and np.isfinite(f.cam_to_world).all()
        np.testing.assert_allclose(f.cam_to_world[:3, :3] @ f.cam_to_world[:3, :3].T, np.eye(3), atol=1e-5)
        assert f.relative_scale == model.relative_scale
        assert r.points.dtype == np.float32 and np.isfinite(r.points).all() and len(r.points) == len(r.colors)
        assert {"model_s", "total_s"} <= set(r.timings)
    assert [t for t, _ in session.trajectory] == pytest.approx([i / 30 for i in range(len(small_rgb))])
    assert session.num_keyframes == len(small_rgb)


def test_streaming_reset_restarts_the_stream_bit_exactly(small_rgb) -> None:
    session = ReconstructionSession(_tiny("cut3r-tiny"))
    first = _run(session, small_rgb[:3])
    session.reset()
    again = _run(session, small_rgb[:3])
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.frame.depth, b.frame.depth)
        np.testing.assert_array_equal(a.frame.cam_to_world, b.frame.cam_to_world)
