"""The encoder-token cache: a windowed session encodes each new image once, its results are bit-identical
to re-encoding the whole context (tiny VGGT), and any change of the encoder (adapter injected, disabled,
weights written, train mode) re-encodes instead of serving stale tokens. Memory stays bounded."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fin3r_lib.adapter import adapter_disabled, apply_adapter
from fin3r_lib.adapter.inject import adapter_layers
from fin3r_lib.data.frame import Frame
from fin3r_lib.errors import InputError
from fin3r_lib.models import build_model
from fin3r_lib.models.base import SESSION_HEADS
from fin3r_lib.models.random_heads import bias_random_camera_head
from fin3r_lib.models.token_cache import EncoderTokenCache, image_key
from fin3r_lib.models.vggt.config import VGGT_TINY
from fin3r_lib.models.vggt.model import VGGT
from fin3r_lib.session import ReconstructionSession, SessionConfig

H, W = 48, 64


def _vggt() -> VGGT:
    """vggt-tiny on a 56-pixel-wide model grid (fast): the cache does not depend on the grid size."""
    torch.manual_seed(0)
    model = VGGT(dataclasses.replace(VGGT_TINY, image_size=56)).eval().requires_grad_(False)
    bias_random_camera_head(model)  # finite focal lengths, so the session places every frame
    return model


def _rgb(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(n)]


def _count_encodes(model: VGGT) -> list[int]:
    """Batch sizes of every call of the encoder (DINOv2 `patch_embed`) from now on."""
    sizes: list[int] = []
    model.aggregator.patch_embed.register_forward_hook(lambda _m, args, _out: sizes.append(args[0].shape[0]))
    return sizes


def _assert_same(got, want) -> None:
    for key in ("depth", "depth_conf", "world_points", "cam_to_world", "intrinsics"):
        np.testing.assert_array_equal(getattr(got, key), getattr(want, key), err_msg=key)


def _predict(model: VGGT, images: list[np.ndarray], cache: EncoderTokenCache | None = None):
    return model.predict(images, heads=SESSION_HEADS, token_cache=cache)


def test_session_encodes_each_image_once_and_matches_reencoding() -> None:
    # every frame is a keyframe (max interval 0): the context fills to 3, then slides
    config = SessionConfig(context_size=3, keyframe_max_interval_s=0.0, min_confidence=0.0)
    cached_model, plain_model = _vggt(), _vggt()
    cached = ReconstructionSession(cached_model, config)
    plain = ReconstructionSession(plain_model, config, encoder_cache=False)
    assert plain.token_cache is None
    encodes_cached, encodes_plain = _count_encodes(cached_model), _count_encodes(plain_model)
    frames = [Frame(rgb, stamp=float(i)) for i, rgb in enumerate(_rgb(7))]
    for frame in frames:
        a, b = cached.process(frame), plain.process(frame)
        _assert_same(a.frame, b.frame)
        np.testing.assert_array_equal(a.points, b.points)
    # 7 frames, each encoded alone exactly once; without the cache: 1 + 2 + 3 + 4 + 4 + 4 + 4 images
    assert encodes_cached == [1] * 7
    assert sum(encodes_plain) == 22
    assert cached.token_cache is not None and len(cached.token_cache) == 4  # context_size + 1
    assert (cached.token_cache.hits, cached.token_cache.misses) == (15, 7)


def test_warm_cache_equals_empty_cache_and_no_cache() -> None:
    model, images = _vggt(), _rgb(4)
    cache = EncoderTokenCache(8)
    _predict(model, images[:3], cache)  # warm: frames 0-2 cached
    warm = _predict(model, images, cache)
    assert (cache.hits, cache.misses) == (3, 4)
    _assert_same(warm, _predict(model, images, EncoderTokenCache(8)))
    _assert_same(warm, _predict(model, images))


def test_adapter_changes_reencode_instead_of_serving_stale_tokens() -> None:
    model, images = _vggt(), _rgb(3)
    cache = EncoderTokenCache(8)
    base = _predict(model, images, cache)
    apply_adapter(model)
    for layer in adapter_layers(model):  # a trained-looking adapter: B != 0
        torch.nn.init.normal_(layer.lora_B["default"].weight, std=0.5)
    adapted = _predict(model, images, cache)
    assert cache.misses == 6
    _assert_same(adapted, _predict(model, images))
    assert not np.array_equal(adapted.depth, base.depth)
    with adapter_disabled(model):  # PEFT's disable flag: the base model again
        _assert_same(_predict(model, images, cache), base)
    assert cache.misses == 9
    _assert_same(_predict(model, images, cache), adapted)  # enabled again
    assert cache.misses == 12


def test_weight_writes_and_train_mode_reencode() -> None:
    model, images = _vggt(), _rgb(2)
    cache = EncoderTokenCache(8)
    _predict(model, images, cache)
    qkv = model.aggregator.patch_embed.blocks[0].attn.qkv.weight
    with torch.no_grad():
        qkv.mul_(1.5)  # in place, as an optimizer step or load_state_dict writes
    _assert_same(_predict(model, images, cache), _predict(model, images))
    assert cache.misses == 4
    model.aggregator.patch_embed.train()
    _predict(model, images, cache)
    assert cache.misses == 6
    model.eval()
    _predict(model, images, cache)
    assert cache.misses == 8
    model.load_state_dict(_vggt().state_dict())
    _assert_same(_predict(model, images, cache), _predict(_vggt(), images))
    assert cache.misses == 10


def test_key_is_the_pixels_not_the_array_object() -> None:
    model, images = _vggt(), _rgb(2)
    cache = EncoderTokenCache(8)
    _predict(model, images, cache)
    _predict(model, [im.copy() for im in images], cache)
    assert (cache.hits, cache.misses) == (2, 2)
    changed = images[1].copy()
    changed[0, 0, 0] ^= 1
    assert image_key(changed) != image_key(images[1])
    _assert_same(_predict(model, [images[0], changed], cache), _predict(model, [images[0], changed]))
    assert (cache.hits, cache.misses) == (3, 3)


def test_memory_is_bounded_and_autograd_bypasses_the_cache() -> None:
    model = _vggt()
    cache = EncoderTokenCache(2)
    for i in range(5):
        _predict(model, _rgb(1, seed=i), cache)
    assert len(cache) == 2
    tensor, _ = model.prepare(_rgb(1))
    tokens = model.encode(tensor)  # [1, N, C]
    assert cache.nbytes == 2 * tokens.nbytes
    fresh = EncoderTokenCache(2)
    model(tensor, token_cache=fresh, frame_keys=[image_key(_rgb(1)[0])])  # autograd on: nothing stored
    assert len(fresh) == 0 and fresh.misses == 0


def test_bad_cache_use_is_refused() -> None:
    dust3r = build_model("dust3r-tiny")
    with pytest.raises(InputError, match="takes no token_cache"):
        dust3r.predict(_rgb(1), token_cache=EncoderTokenCache(2))
    with pytest.raises(ValueError, match="max_frames >= 1"):
        EncoderTokenCache(0)
    model = _vggt()
    tensor, _ = model.prepare(_rgb(2))
    with pytest.raises(ValueError, match="one key per image"), torch.no_grad():
        model(tensor, token_cache=EncoderTokenCache(2), frame_keys=[b"x"])
