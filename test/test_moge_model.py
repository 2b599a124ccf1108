"""Our MoGe (fin3r_lib.models.moge): release key layouts, strict release-file loading, MoGe's camera
conventions and focal / z-shift recovery against independent computations."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from fin3r_lib.errors import CheckpointError, InputError
from fin3r_lib.geometry import unproject_depth
from fin3r_lib.models.moge import VARIANTS, build_moge, infer, load_release, resolve_weights, seeded_model
from fin3r_lib.models.moge.geometry import (
    depth_to_points,
    normalized_intrinsics,
    pixel_intrinsics,
    recover_focal_shift,
    view_plane_uv,
)
from fin3r_lib.models.moge.remap import remap_points


@pytest.mark.parametrize("name", ["moge-vitl", "moge-2-vitl", "moge-2-vitl-normal"])
def test_meta_build_matches_reference_layout(name: str, release_keys) -> None:
    """Names, order and shapes of the reference model's state dict (test/data, dumped from microsoft/MoGe)."""
    expected = release_keys(name)
    with torch.device("meta"):
        model = build_moge(VARIANTS[name].config)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert list(got) == list(expected)
    assert got == expected


def save_release(path: Path, model: torch.nn.Module, config: dict) -> Path:
    torch.save({"model_config": config, "model": model.state_dict()}, path)
    return path


@pytest.mark.parametrize("name", ["moge-1-tiny", "moge-2-tiny"])
def test_release_file_loads_strictly_and_reproduces_outputs(name: str, tmp_path: Path) -> None:
    config = VARIANTS[name].config
    model = seeded_model(config, seed=3)
    path = save_release(tmp_path / "model.pt", model, config)
    loaded, found = load_release(path)
    assert found == config
    assert resolve_weights(tmp_path) == path
    image = torch.rand(1, 3, 42, 56, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = model(image, 48), loaded(image, 48)
    assert sorted(a) == sorted(b)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_damaged_release_files_are_refused(tmp_path: Path) -> None:
    config = VARIANTS["moge-2-tiny"].config
    state = seeded_model(config, seed=0).state_dict()
    del state["scale_head.0.weight"]
    torch.save({"model_config": config, "model": state}, tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match=r"1 missing keys: scale_head.0.weight"):
        load_release(tmp_path / "missing.pt")
    torch.save(state, tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="expected a dict with 'model_config' and 'model'"):
        load_release(tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match=r"expected model\.pt in it"):
        resolve_weights(tmp_path)
    with pytest.raises(InputError, match="expected one of"):
        build_moge({**config, "encoder": {**config["encoder"], "backbone": "dinov2_vitx14"}})


def test_view_plane_uv_spans_the_diagonal() -> None:
    h, w = 6, 8
    uv = view_plane_uv(h, w, dtype=torch.float64).numpy()
    diag = math.hypot(w, h)
    # pixel centres (i + 0.5) / size mapped onto [-w/diag, w/diag] x [-h/diag, h/diag]
    u = (np.arange(w) + 0.5) / w * 2 - 1
    v = (np.arange(h) + 0.5) / h * 2 - 1
    np.testing.assert_allclose(uv[0, :, 0], u * w / diag, atol=1e-12)
    np.testing.assert_allclose(uv[:, 0, 1], v * h / diag, atol=1e-12)


def test_recover_focal_shift_of_a_shifted_pinhole_point_map() -> None:
    h, w, focal, shift = 64, 64, 1.3, 0.7
    uv = view_plane_uv(h, w, dtype=torch.float64)
    z = 2.0 + torch.linspace(0, 1, w, dtype=torch.float64)[None, :].expand(h, w)  # a slanted plane
    points = torch.cat([uv * z[..., None] / focal, (z - shift)[..., None]], dim=-1)[None].float()
    got_focal, got_shift = recover_focal_shift(points, None)
    assert abs(float(got_focal[0]) - focal) < 1e-3 and abs(float(got_shift[0]) - shift) < 1e-3
    _, only_shift = recover_focal_shift(points, torch.ones(1, h, w, dtype=torch.bool), torch.tensor([focal]))
    assert abs(float(only_shift[0]) - shift) < 1e-3


def test_normalized_intrinsics_to_pixels_matches_pinhole_unprojection() -> None:
    h, w = 30, 40
    k_norm = normalized_intrinsics(torch.tensor([1.1], dtype=torch.float64), w / h)
    depth = torch.rand(1, h, w, dtype=torch.float64) + 1
    ours = depth_to_points(depth, k_norm)[0].numpy()
    k_px = pixel_intrinsics(k_norm[0].numpy(), h, w)
    # focal relative to half the diagonal: fx = f * diag / 2 in pixels
    assert math.isclose(k_px[0, 0], 1.1 * math.hypot(w, h) / 2, rel_tol=1e-12)
    assert (k_px[0, 2], k_px[1, 2]) == ((w - 1) / 2, (h - 1) / 2)
    np.testing.assert_allclose(ours, unproject_depth(depth[0].numpy(), k_px), rtol=1e-12, atol=1e-12)


def test_exp_remap() -> None:
    raw = torch.tensor([[0.5, -1.0, math.log(2.0)]])
    np.testing.assert_allclose(remap_points(raw, "exp").numpy(), [[1.0, -2.0, 2.0]], rtol=1e-6)
    with pytest.raises(InputError, match="remap_output"):
        remap_points(raw, "cubic")


def test_infer_reprojects_through_the_recovered_camera() -> None:
    model = seeded_model(VARIANTS["moge-2-tiny"].config, seed=1)
    result = infer(model, torch.rand(2, 3, 36, 48, generator=torch.Generator().manual_seed(2)), 60)
    assert result.points.shape == (2, 36, 48, 3) and result.mask.shape == (2, 36, 48)
    assert result.mask.any() and result.metric_scale is not None and (result.metric_scale > 0).all()
    valid = result.mask
    back = depth_to_points(torch.where(valid, result.depth, 1.0), result.intrinsics)
    torch.testing.assert_close(back[valid], result.points[valid])
    assert torch.isinf(result.depth[~valid]).all()
    with torch.no_grad():
        raw = model(torch.rand(1, 3, 36, 48), 60)
    assert raw["normal"].norm(dim=-1).sub(1).abs().max() < 1e-5
