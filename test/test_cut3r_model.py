"""CUT3R: checkpoint key layout, streaming semantics and the real 7-Scenes frames through the tiny model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from fin3r_lib.errors import InputError
from fin3r_lib.models.cut3r import CUT3R
from fin3r_lib.models.cut3r.pose import ray_map
from fin3r_lib.models.loader import build_model


@pytest.mark.parametrize(
    ("model", "spec"), [("cut3r-512-dpt", "cut3r_512_dpt"), ("cut3r-224-linear", "cut3r_224_linear")]
)
def test_state_dict_equals_release_keys(model: str, spec: str, release_keys) -> None:
    expected = release_keys(spec)
    built = build_model(model, device="meta")
    own = {k: tuple(v.shape) for k, v in built.state_dict().items()}
    assert sorted(set(expected) - set(own)) == []
    assert sorted(set(own) - set(expected)) == []
    assert {k: v for k, v in own.items() if v != expected[k]} == {}
    assert not list(built.buffers())  # nothing computed at build time that could stay on the meta device


def test_duplicate_dpt_convs_are_shared() -> None:
    scratch = build_model("cut3r-512-dpt", device="meta").downstream_head.dpt_self.scratch
    assert all(scratch.layer_rn[i] is getattr(scratch, f"layer{i + 1}_rn") for i in range(4))


@pytest.fixture(scope="module")
def tiny() -> CUT3R:
    torch.manual_seed(0)
    return build_model("cut3r-tiny")


def _images(n: int, h: int = 60, w: int = 80, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_forward_returns_prediction_keys_on_model_grid(tiny: CUT3R) -> None:
    images, _ = tiny.prepare(_images(3))
    pred = tiny(images)
    hm, wm = images.shape[-2:]
    assert (hm, wm) == (48, 64)
    assert pred["depth"].shape == (1, 3, hm, wm)
    assert pred["world_points"].shape == (1, 3, hm, wm, 3)
    assert pred["cam_to_world"].shape == (1, 3, 4, 4)
    assert pred["intrinsics"].shape == (1, 3, 3, 3)
    assert (pred["depth_conf"] > 1).all() and (pred["world_points_conf"] > 1).all()
    assert torch.allclose(pred["intrinsics"][0, :, :2, 2], torch.tensor([wm / 2, hm / 2]).expand(3, 2))


def test_predict_equals_stepping(tiny: CUT3R) -> None:
    images = _images(4)
    batch = tiny.predict(images)
    stream = tiny.new_stream()
    for i, img in enumerate(images):
        frame = stream.step(img)
        np.testing.assert_allclose(frame.depth, batch.depth[i], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(frame.world_points, batch.world_points[i], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(frame.cam_to_world, batch.cam_to_world[i], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(frame.intrinsics, batch.intrinsics[i], rtol=1e-6, atol=1e-6)
    assert stream.state is not None and stream.state.frames == 4
    assert not batch.relative_scale


def test_frames_after_the_first_depend_on_the_state(tiny: CUT3R) -> None:
    a, b = _images(2)
    fresh = tiny.new_stream().step(b)
    stream = tiny.new_stream()
    stream.step(a)
    assert not np.allclose(stream.step(b).depth, fresh.depth)


def test_reset_restores_initial_state_exactly(tiny: CUT3R) -> None:
    images = _images(3)
    fresh = tiny.new_stream()
    first = fresh.step(images[0])
    stream = tiny.new_stream()
    for img in images:
        stream.step(img)
    stream.reset()
    again = stream.step(images[0])
    assert torch.equal(stream.state.tokens, fresh.state.tokens)
    assert torch.equal(stream.state.memory, fresh.state.memory)
    assert stream.state.frames == 1
    np.testing.assert_array_equal(again.depth, first.depth)
    np.testing.assert_array_equal(again.cam_to_world, first.cam_to_world)
    init = tiny.initial_state(1)
    assert torch.equal(init.memory, tiny.pose_retriever.mem)
    assert torch.equal(init.tokens[0], tiny.decoder_embed_state(tiny.register_tokens.weight))


def test_model_sees_pixels_normalized_to_minus_one_one(tiny: CUT3R) -> None:
    seen = []
    handle = tiny.patch_embed.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    try:
        stream = tiny.new_stream()
        stream.step(np.zeros((48, 64, 3), np.uint8))
        stream.step(np.full((48, 64, 3), 255, np.uint8))
    finally:
        handle.remove()
    assert torch.all(seen[0] == -1.0) and torch.all(seen[1] == 1.0)


def test_ray_map_encoder_gives_one_token_per_patch(tiny: CUT3R) -> None:
    tokens, pos = tiny.encode_ray_map(torch.randn(2, 6, 32, 48))
    assert tokens.shape == (2, 6, tiny.cfg.enc_dim) and pos.shape == (2, 6, 2)


def test_bad_input_raises_input_error(tiny: CUT3R) -> None:
    stream = tiny.new_stream()
    with pytest.raises(InputError, match="uint8"):
        stream.step(np.zeros((48, 64, 3), np.float32))
    with pytest.raises(InputError, match="multiples of 16"):
        tiny.step_tensor(torch.zeros(1, 3, 40, 64), tiny.initial_state(1))
    assert stream.state is None


def test_seven_scenes_fifty_steps(tiny: CUT3R, seven_scenes: dict[str, np.ndarray]) -> None:
    stream = tiny.new_stream()
    rgb = seven_scenes["rgb"]
    assert len(rgb) == 50
    for img in rgb:
        frame = stream.step(img)
        assert frame.size == (480, 640)
        assert frame.world_points.shape == (480, 640, 3)
        for arr in (frame.depth, frame.depth_conf, frame.world_points, frame.cam_to_world, frame.intrinsics):
            assert np.isfinite(arr).all()
        assert not frame.relative_scale
    assert stream.state.frames == 50


def test_unseen_view_query_leaves_state_unchanged(tiny: CUT3R) -> None:
    stream = tiny.new_stream()
    for img in _images(2):
        stream.step(img)
    before = stream.state
    k = torch.tensor([[50.0, 0, 32], [0, 50.0, 24], [0, 0, 1]])
    rays = ray_map(torch.eye(4), k, 48, 64)
    assert torch.allclose(rays[5:, 24, 32], torch.ones(1))  # the principal ray of an identity camera is +z
    with torch.inference_mode():
        out = tiny.query_ray_map(rays[None], before)
    assert out["pts3d_in_other_view"].shape == (1, 48, 64, 3) and out["camera_pose"].shape == (1, 7)
    assert stream.state is before and stream.state.frames == 2


def test_fp16_rope_quirk_is_on_in_the_image_encoder_only(tiny: CUT3R) -> None:
    assert all(blk.attn.rope_in_fp16 for blk in tiny.enc_blocks)
    assert not any(blk.attn.rope_in_fp16 for blk in tiny.enc_blocks_ray_map)
    assert not any(blk.attn.rope_in_fp16 for blk in tiny.dec_blocks)
    exact = CUT3R(replace(tiny.cfg, rope_in_fp16=False)).eval()
    exact.load_state_dict(tiny.state_dict())
    x = torch.rand(1, 1, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        quirk, plain = tiny.encode(x), exact.encode(x)
    assert not torch.equal(quirk, plain)
    assert torch.allclose(quirk, plain, atol=1e-2)
