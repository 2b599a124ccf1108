"""VGGT model: release key layout, checkpoint loading and its errors, layer pruning, predict on real frames."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from fin3r_lib.errors import CheckpointError
from fin3r_lib.geometry import unproject_depth
from fin3r_lib.models import PREDICTION_KEYS, build_model
from fin3r_lib.models.vggt import VGGT
from fin3r_lib.models.vggt.config import VGGT_TINY

RELEASE_PARAMS = 1_256_537_516


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model("vggt-tiny")


@pytest.fixture(scope="module")
def small_images() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(1, 2, 3, 42, 56)


def _outputs(model, images):
    with torch.inference_mode():
        return model(images)


def test_full_config_matches_release_keys_on_meta(release_keys):
    expected = release_keys("vggt_1b")
    model = build_model("vggt-1b", device="meta")
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert list(ours) == list(expected)
    assert ours == expected
    assert sum(p.numel() for p in model.parameters()) == RELEASE_PARAMS
    assert all(p.is_meta for p in model.parameters())


@pytest.mark.parametrize("form", ["pt", "safetensors", "hf_folder"])
def test_tiny_round_trip_through_checkpoint_files(tiny, small_images, tmp_path, form):
    state = tiny.state_dict()
    if form == "pt":
        ref = tmp_path / "tiny.pt"
        torch.save(state, ref)
    elif form == "safetensors":
        ref = tmp_path / "tiny.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(ref))
    else:
        ref = tmp_path / "hf"
        ref.mkdir()
        (ref / "config.json").write_text(json.dumps({"model": "vggt-tiny"}))
        save_file({k: v.contiguous() for k, v in state.items()}, str(ref / "model.safetensors"))
    loaded = build_model("vggt-tiny", checkpoint=ref)
    assert not any(t.is_meta for t in loaded.state_dict().values())
    a, b = _outputs(tiny, small_images), _outputs(loaded, small_images)
    for key in PREDICTION_KEYS:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_truncated_checkpoint_is_a_clear_error(tiny, tmp_path, suffix):
    full = tmp_path / f"full{suffix}"
    state = {k: v.contiguous() for k, v in tiny.state_dict().items()}
    torch.save(state, full) if suffix == ".pt" else save_file(state, str(full))
    cut = tmp_path / f"cut{suffix}"
    size = full.stat().st_size // 2
    cut.write_bytes(full.read_bytes()[:size])
    with pytest.raises(CheckpointError, match=f"checkpoint {cut} is truncated at byte {size}:"):
        build_model("vggt-tiny", checkpoint=cut)


def test_foreign_checkpoint_lists_missing_unexpected_and_misshaped_keys(tiny, tmp_path):
    state = dict(tiny.state_dict())
    state.pop("camera_head.embed_pose.weight")
    state["encoder.something_else"] = torch.zeros(3)
    state["depth_head.norm.weight"] = torch.zeros(7)
    path = tmp_path / "foreign.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    with pytest.raises(CheckpointError) as err:
        build_model("vggt-tiny", checkpoint=path)
    msg = str(err.value)
    assert "1 missing keys: camera_head.embed_pose.weight" in msg
    assert "1 unexpected keys: encoder.something_else" in msg
    assert "depth_head.norm.weight (checkpoint (7,), model (128,))" in msg


def test_offline_repo_id_without_cache_names_repo_cache_and_local_file(tmp_path, monkeypatch):
    from huggingface_hub import constants

    cache = tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    with pytest.raises(CheckpointError) as err:
        build_model("vggt-tiny", checkpoint="facebook/VGGT-1B")
    msg = str(err.value)
    assert "'facebook/VGGT-1B'" in msg
    assert str(cache) in msg
    assert msg.endswith("pass a local copy: checkpoint='/path/to/model.safetensors'")


def test_keeping_only_head_layers_equals_keeping_all(tiny, small_images):
    assert tiny.keep_layers == tiny.config.head_layers
    lean = _outputs(tiny, small_images)
    tiny.keep_layers = None
    try:
        full = _outputs(tiny, small_images)
    finally:
        tiny.keep_layers = tiny.config.head_layers
    for key in (*PREDICTION_KEYS, "pose_enc"):
        torch.testing.assert_close(lean[key], full[key], rtol=0, atol=0)


def test_head_chunking_does_not_change_outputs(tiny, small_images):
    images = torch.cat([small_images, small_images.flip(-1), small_images[:, :1]], dim=1)  # 5 frames
    outputs = {}
    try:
        for chunk in (None, 1, 2):
            tiny.frames_chunk_size = chunk
            outputs[chunk] = _outputs(tiny, images)
    finally:
        tiny.frames_chunk_size = tiny.config.frames_chunk_size
    for chunk in (1, 2):
        for key in ("depth", "depth_conf", "world_points", "world_points_conf"):
            torch.testing.assert_close(outputs[chunk][key], outputs[None][key])


def test_predict_on_real_frames_is_consistent(tiny, seven_scenes):
    # random weights, but a camera branch bias giving a valid camera (ReLU'd FoVs of ~60 degrees)
    model = copy.deepcopy(tiny)
    with torch.no_grad():
        model.camera_head.pose_branch.fc2.weight.mul_(0.01)
        model.camera_head.pose_branch.fc2.bias.copy_(torch.tensor([0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.1]))
    frames = list(seven_scenes["rgb"][:3])
    rec = model.predict(frames)
    s, h, w = 3, 480, 640
    assert rec.depth.shape == (s, h, w) and rec.depth_conf.shape == (s, h, w)
    assert rec.world_points.shape == (s, h, w, 3) and rec.world_points_conf.shape == (s, h, w)
    assert rec.cam_to_world.shape == (s, 4, 4) and rec.intrinsics.shape == (s, 3, 3)
    assert rec.relative_scale
    for arr in (rec.depth, rec.depth_conf, rec.world_points, rec.world_points_conf, rec.cam_to_world, rec.intrinsics):
        assert np.isfinite(arr).all()
    assert (rec.depth > 0).all() and (rec.depth_conf > 1).all()
    # model-grid intrinsics from the pose encoding, rescaled onto the 480x640 input grid
    tensor, mappings = model.prepare(frames)
    with torch.inference_mode():
        pred = model(tensor)
    k_model = pred["intrinsics"][0].double().numpy()
    np.testing.assert_allclose(rec.intrinsics, mappings[0].intrinsics_to_input(k_model), rtol=1e-12)
    sx = w / mappings[0].resized_size[1]
    np.testing.assert_allclose(rec.intrinsics[:, 0, 0], k_model[:, 0, 0] * sx, rtol=1e-12)
    # poses are rigid; the points are the depth unprojected with these intrinsics and poses
    rot = rec.cam_to_world[:, :3, :3]
    np.testing.assert_allclose(rot @ rot.transpose(0, 2, 1), np.broadcast_to(np.eye(3), (s, 3, 3)), atol=1e-5)
    np.testing.assert_allclose(rec.cam_to_world[:, 3], np.tile([0, 0, 0, 1.0], (s, 1)))
    for i in range(s):
        expected = unproject_depth(rec.depth[i], rec.intrinsics[i], rec.cam_to_world[i])
        np.testing.assert_allclose(rec.world_points[i], expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max()))


def test_checkpoint_with_track_head_loads_into_model_without_it(tiny, small_images, tmp_path, caplog):
    small_track = dict(track_features=16, track_hidden=32, track_heads=2, track_depth=1, track_virtual_tokens=4)
    with_track = VGGT(dataclasses.replace(VGGT_TINY, track_head=True, **small_track))
    with_track.load_state_dict(tiny.state_dict(), strict=False)
    state = with_track.state_dict()
    assert any(k.startswith("track_head.tracker.updateformer.") for k in state)
    path = tmp_path / "with_track.pt"
    torch.save(state, path)
    with caplog.at_level(logging.INFO, logger="fin3r_lib.models.checkpoint"):
        loaded = build_model("vggt-tiny", checkpoint=path)
    assert "track_head." in caplog.text and "dropped" in caplog.text
    assert not any(k.startswith("track_head.") for k in loaded.state_dict())
    torch.testing.assert_close(_outputs(loaded, small_images)["depth"], _outputs(tiny, small_images)["depth"])
