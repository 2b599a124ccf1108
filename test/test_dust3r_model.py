"""DUSt3R / MASt3R: checkpoint key layout, pair properties of the reference, poses from point maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fin3r_lib.errors import InputError
from fin3r_lib.models.dust3r import DUSt3R
from fin3r_lib.models.dust3r.pose import poses_from_pairs, sim3_from_points
from fin3r_lib.models.loader import build_model


@pytest.mark.parametrize(
    ("model", "spec"),
    [
        ("dust3r-512-dpt", "dust3r_512_dpt"),
        ("dust3r-512-linear", "dust3r_512_linear"),
        ("dust3r-224-linear", "dust3r_224_linear"),
        ("mast3r-512", "mast3r_512"),
    ],
)
def test_state_dict_equals_reference_keys(model: str, spec: str, release_keys) -> None:
    expected = release_keys(spec)  # recorded from the reference code built at random weights
    built = build_model(model, device="meta")
    own = {k: tuple(v.shape) for k, v in built.state_dict().items()}
    assert sorted(set(expected) - set(own)) == []
    assert sorted(set(own) - set(expected)) == []
    assert {k: v for k, v in own.items() if v != expected[k]} == {}
    assert not list(built.buffers())


@pytest.fixture(scope="module")
def tiny() -> DUSt3R:
    torch.manual_seed(0)
    return build_model("dust3r-tiny")


def _images(n: int, h: int = 60, w: int = 80, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _tensors(model: DUSt3R, n: int, seed: int = 0) -> torch.Tensor:
    return model.prepare(_images(n, seed=seed))[0][0]  # [n, 3, Hm, Wm]


def test_forward_returns_prediction_keys(tiny: DUSt3R) -> None:
    images, _ = tiny.prepare(_images(3))
    with torch.no_grad():
        pred = tiny(images)
    hm, wm = images.shape[-2:]
    assert pred["depth"].shape == (1, 3, hm, wm)
    assert pred["world_points"].shape == (1, 3, hm, wm, 3)
    assert (pred["depth_conf"] > 1).all()
    assert torch.equal(pred["cam_to_world"][0, 0], torch.eye(4))
    rot = pred["cam_to_world"][0, 1:, :3, :3]
    assert torch.allclose(rot @ rot.transpose(-1, -2), torch.eye(3).expand(2, 3, 3), atol=1e-5)


def test_single_view_is_the_pair_with_itself(tiny: DUSt3R) -> None:
    x = _tensors(tiny, 1)
    with torch.no_grad():
        res1, _ = tiny.forward_pair(x, x)
        pred = tiny(x[None])
    torch.testing.assert_close(pred["depth"][0, 0], res1["pts3d"][0, ..., 2], rtol=0, atol=0)
    img = _images(1)[0]
    single = tiny.predict([img])
    pair = tiny.predict_pair(img, img)
    np.testing.assert_array_equal(single.depth[0], pair.frame.depth)
    np.testing.assert_array_equal(single.intrinsics[0], pair.frame.intrinsics)


def test_view1_depends_on_view2_and_batch_equals_pairs(tiny: DUSt3R) -> None:
    a, b, c = _tensors(tiny, 3)
    with torch.no_grad():
        ab, _ = tiny.forward_pair(a[None], b[None])
        ac, _ = tiny.forward_pair(a[None], c[None])
        both1, _ = tiny.forward_pair(torch.stack([a, a]), torch.stack([b, c]))
    assert not torch.allclose(ab["pts3d"], ac["pts3d"])  # cross-attention reaches view 1
    torch.testing.assert_close(both1["pts3d"][:1], ab["pts3d"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(both1["pts3d"][1:], ac["pts3d"], rtol=1e-5, atol=1e-6)


def test_swapping_views_swaps_outputs_with_tied_weights() -> None:
    """The reference's symmetry: with decoder 2 and head 2 equal to decoder 1 and head 1 (what its
    loader makes of a CroCo checkpoint), view 1 of (a, b) equals view 2 of (b, a)."""
    torch.manual_seed(1)
    model = build_model("dust3r-tiny")
    model.dec_blocks2.load_state_dict(model.dec_blocks.state_dict())
    model.downstream_head2.load_state_dict(model.downstream_head1.state_dict())
    a, b = _tensors(model, 2, seed=3)
    with torch.no_grad():
        ab1, ab2 = model.forward_pair(a[None], b[None])
        ba1, ba2 = model.forward_pair(b[None], a[None])
    torch.testing.assert_close(ab1["pts3d"], ba2["pts3d_in_other_view"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ab1["conf"], ba2["conf"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ab2["pts3d_in_other_view"], ba1["pts3d"], rtol=1e-5, atol=1e-6)


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def test_poses_from_point_maps_recover_a_known_motion() -> None:
    rng = np.random.default_rng(0)
    h, w = 12, 16
    v, u = np.mgrid[0:h, 0:w]
    z = rng.uniform(1.0, 4.0, (h, w))
    first = np.stack([(u - w / 2) / 10 * z, (v - h / 2) / 10 * z, z], -1)  # frame 0's own points
    r, t = _rotation(np.array([0.2, 1.0, -0.3]), 0.4), np.array([0.3, -0.1, 0.5])
    scale = 1.7  # the second pair's own unit: frame 0 seen from frame 1, in a 1.7x larger scale
    first_in_1 = (first - t) @ r / scale  # x1 = R^T (x0 - t) / s
    own = torch.from_numpy(np.stack([first, first_in_1]))[None]
    conf = torch.ones(1, 2, h, w, dtype=torch.float64)
    sim = poses_from_pairs(own, conf, own, conf)[0, 1].numpy()  # first_seen[:, 1] is frame 0 seen from 1
    np.testing.assert_allclose(sim[:3, :3], scale * r, atol=1e-9)
    np.testing.assert_allclose(sim[:3, 3], t, atol=1e-9)
    assert np.isnan(sim3_from_points(own[0, 0, :1, :3], own[0, 0, :1, :3], conf[0, 0, :1, :3]).numpy()).all()


def test_mast3r_descriptors() -> None:
    torch.manual_seed(0)
    model = build_model("mast3r-tiny")
    a, b = _tensors(model, 2)
    with torch.no_grad():
        res1, res2 = model.forward_pair(a[None], b[None])
    for res in (res1, res2):
        assert res["desc"].shape == (1, *a.shape[-2:], 8)
        torch.testing.assert_close(res["desc"].norm(dim=-1), torch.ones(1, *a.shape[-2:]))
        assert (res["desc_conf"] > 0).all()
    assert not model.relative_scale and build_model("dust3r-tiny").relative_scale


def test_image_sides_must_be_patch_multiples(tiny: DUSt3R) -> None:
    with pytest.raises(InputError, match="multiples of 16"):
        tiny.forward_pair(torch.rand(1, 3, 40, 64), torch.rand(1, 3, 40, 64))
