"""Heads selectable per call: the outputs computed are bit-identical to the all-heads path, the others are
not computed, and the session asks only for depth and camera (VGGT's point head, CUT3R's cross-view and
colour heads never run under it)."""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import pytest
import torch

from fin3r_lib.data.frame import Frame
from fin3r_lib.errors import InputError
from fin3r_lib.models import build_model
from fin3r_lib.models.cut3r import CUT3R
from fin3r_lib.models.cut3r.config import CUT3R_TINY
from fin3r_lib.models.vggt.model import VGGT
from fin3r_lib.session import ReconstructionSession, SessionConfig
from fin3r_lib.session.align import AlignmentError

#: the keys each head gives, written out here (not taken from the models)
VGGT_KEYS = {
    "depth": {"depth", "depth_conf"},
    "camera": {"cam_to_world", "intrinsics", "pose_enc", "pose_enc_iters"},
    "points": {"world_points", "world_points_conf"},
}
CUT3R_KEYS = {
    "depth": {"depth", "depth_conf", "intrinsics"},
    "camera": {"cam_to_world"},
    "points": {"world_points", "world_points_conf"},
    "rgb": set(),
}
SUBSETS = [("depth", "camera"), ("depth",), ("camera",), ("points",), ("points", "camera")]


@pytest.fixture(scope="module")
def vggt() -> VGGT:
    torch.manual_seed(0)
    return build_model("vggt-tiny")


@pytest.fixture(scope="module", params=["dpt", "linear"])
def cut3r(request) -> CUT3R:
    torch.manual_seed(0)
    return CUT3R(dataclasses.replace(CUT3R_TINY, head=request.param)).eval()


def _rgb(n: int, h: int = 48, w: int = 64, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _count_calls(modules: dict[str, torch.nn.Module]) -> tuple[dict[str, int], list]:
    counts = dict.fromkeys(modules, 0)

    def hook(name: str):
        def count(*_args) -> None:
            counts[name] += 1

        return count

    handles = [m.register_forward_hook(hook(name)) for name, m in modules.items()]
    return counts, handles


@pytest.mark.parametrize("heads", SUBSETS)
def test_vggt_selected_heads_equal_the_full_path(vggt: VGGT, heads) -> None:
    images = torch.rand(1, 3, 3, 42, 56, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        full = vggt(images)
        part = vggt(images, heads=heads)
    assert set(part) == set().union(*(VGGT_KEYS[h] for h in heads))
    for key, value in part.items():
        assert torch.equal(value, full[key]), key


@pytest.mark.parametrize("heads", [*SUBSETS, ("rgb",)])
def test_cut3r_selected_heads_equal_the_full_path(cut3r: CUT3R, heads) -> None:
    images, _ = cut3r.prepare(_rgb(3))
    with torch.inference_mode():
        full = cut3r(images)
        part = cut3r(images, heads=heads)
        out_full, state_full = cut3r.step_tensor(images[:, 0], cut3r.initial_state())
        out_part, state_part = cut3r.step_tensor(images[:, 0], cut3r.initial_state(), heads=heads)
    assert set(part) == set().union(*(CUT3R_KEYS[h] for h in heads))
    for key, value in part.items():
        assert torch.equal(value, full[key]), key
    assert set(out_part) < set(out_full)
    for key, value in out_part.items():
        assert torch.equal(value, out_full[key]), key
    assert torch.equal(state_part.tokens, state_full.tokens) and torch.equal(state_part.memory, state_full.memory)


def test_cut3r_stream_with_session_heads_equals_the_full_stream(cut3r: CUT3R) -> None:
    full, lean = cut3r.new_stream(), cut3r.new_stream(heads=("depth", "camera"))
    for img in _rgb(3, seed=2):
        a, b = full.step(img), lean.step(img)
        for name in ("depth", "depth_conf", "world_points", "cam_to_world", "intrinsics"):
            np.testing.assert_array_equal(getattr(b, name), getattr(a, name), err_msg=name)
        # without the cross-view head the unprojected points carry the depth confidence they come from
        np.testing.assert_array_equal(b.world_points_conf, a.depth_conf)
    assert torch.equal(full.state.tokens, lean.state.tokens)


def test_vggt_predict_with_session_heads_equals_full_predict(vggt: VGGT) -> None:
    images = _rgb(2, 56, 70, seed=3)
    full = vggt.predict(images)
    lean = vggt.predict(images, heads=("depth", "camera"))
    for name in ("depth", "depth_conf", "world_points", "cam_to_world", "intrinsics"):
        np.testing.assert_array_equal(getattr(lean, name), getattr(full, name), err_msg=name)
    assert "head_world_points" in full.extras and "head_world_points" not in lean.extras
    np.testing.assert_array_equal(lean.world_points_conf, full.depth_conf)


@pytest.mark.parametrize("heads", [(), ("depth", "normals"), "depth"])
def test_unknown_or_empty_heads_are_input_errors(vggt: VGGT, cut3r: CUT3R, heads) -> None:
    images = torch.rand(1, 1, 3, 28, 28)
    with pytest.raises(InputError, match="expected heads among"):
        vggt(images, heads=heads)
    with pytest.raises(InputError, match="expected heads among"):
        cut3r.step_tensor(torch.rand(1, 3, 32, 32), cut3r.initial_state(), heads=heads)


def test_predict_and_stream_need_depth_and_camera(vggt: VGGT, cut3r: CUT3R) -> None:
    with pytest.raises(InputError, match="including 'depth' and 'camera'"):
        vggt.predict(_rgb(1), heads=("depth",))
    with pytest.raises(InputError, match="including 'depth' and 'camera'"):
        cut3r.new_stream(heads=("camera", "points"))


def test_session_runs_only_the_heads_it_reads(vggt: VGGT) -> None:
    config = SessionConfig(context_size=2, keyframe_min_flow_px=0.0, min_confidence=1.0, confidence_top_fraction=1.0)
    cut3r = build_model("cut3r-tiny")
    watched = {
        "vggt_depth": vggt.depth_head,
        "vggt_points": vggt.point_head,
        "vggt_camera": vggt.camera_head,
        "cut3r_self": cut3r.downstream_head.dpt_self,
        "cut3r_cross": cut3r.downstream_head.dpt_cross,
        "cut3r_rgb": cut3r.downstream_head.dpt_rgb,
        "cut3r_final_transform": cut3r.downstream_head.final_transform[0],
        "cut3r_pose": cut3r.downstream_head.pose_head,
    }
    counts, handles = _count_calls(watched)
    try:
        for model in (vggt, cut3r):
            session = ReconstructionSession(model, config)
            for i, img in enumerate(_rgb(3, 60, 80, seed=4)):
                # random weights may fit unusable intrinsics: such a frame is rejected after the heads ran
                with contextlib.suppress(AlignmentError):
                    session.process(Frame(img, i / 30))
    finally:
        for h in handles:
            h.remove()
    assert counts["vggt_points"] == counts["cut3r_cross"] == counts["cut3r_rgb"] == 0
    assert counts["cut3r_final_transform"] == 0
    assert counts["vggt_depth"] == counts["vggt_camera"] == 3
    assert counts["cut3r_self"] == counts["cut3r_pose"] == 3
