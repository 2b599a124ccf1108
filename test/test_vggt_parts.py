"""VGGT parts checked against their formulas: pose encoding, 2D RoPE, DPT UV embedding and residual
unit, preprocessing geometry, RoPE token positions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fin3r_lib.errors import InputError
from fin3r_lib.models.layers.dpt_blocks import DPTFusion, ResidualConvUnit
from fin3r_lib.models.layers.rope import RoPE2D
from fin3r_lib.models.vggt.aggregator import Aggregator
from fin3r_lib.models.vggt.config import VGGT_TINY
from fin3r_lib.models.vggt.dpt_head import add_uv_embedding_
from fin3r_lib.models.vggt.pose_encoding import (
    extri_intri_to_pose_encoding,
    extrinsics_to_cam_to_world,
    mat_to_quat,
    pose_encoding_to_extri_intri,
    quat_to_mat,
)
from fin3r_lib.models.vggt.preprocess import preprocess_images


def _random_rotations(n: int, gen: torch.Generator) -> torch.Tensor:
    q = torch.randn(n, 4, generator=gen, dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    x, y, z, w = q.unbind(-1)  # Hamilton, scalar-last, written out independently
    return torch.stack(
        [
            torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            torch.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            torch.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def test_pose_encoding_round_trips_extrinsics_and_intrinsics():
    gen = torch.Generator().manual_seed(0)
    rot = _random_rotations(64, gen)
    rot[0] = torch.eye(3, dtype=torch.float64)
    rot[1] = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))  # 180 degrees: w = 0
    trans = torch.randn(64, 3, 1, generator=gen, dtype=torch.float64)
    extrinsics = torch.cat([rot, trans], dim=-1).reshape(2, 32, 3, 4)
    h, w = 392, 518
    k = torch.zeros(2, 32, 3, 3, dtype=torch.float64)
    k[..., 0, 0] = 300 + 200 * torch.rand(2, 32, generator=gen, dtype=torch.float64)
    k[..., 1, 1] = 300 + 200 * torch.rand(2, 32, generator=gen, dtype=torch.float64)
    k[..., 0, 2], k[..., 1, 2], k[..., 2, 2] = w / 2, h / 2, 1.0
    enc = extri_intri_to_pose_encoding(extrinsics, k, (h, w))
    assert enc.shape == (2, 32, 9)
    assert (enc[..., 6] >= 0).all()  # scalar part non-negative
    torch.testing.assert_close(enc[..., 3:7].norm(dim=-1), torch.ones(2, 32, dtype=torch.float64))
    ext2, k2 = pose_encoding_to_extri_intri(enc, (h, w))
    torch.testing.assert_close(ext2, extrinsics, atol=1e-10, rtol=0)
    torch.testing.assert_close(k2, k, atol=1e-9, rtol=0)
    torch.testing.assert_close(quat_to_mat(mat_to_quat(rot)), rot, atol=1e-10, rtol=0)


def test_quat_to_mat_normalizes_and_cam_to_world_inverts_extrinsics():
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(10, 4, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(quat_to_mat(3.0 * q), quat_to_mat(q))
    ext = torch.cat([quat_to_mat(q), torch.randn(10, 3, 1, generator=gen, dtype=torch.float64)], dim=-1)
    c2w = extrinsics_to_cam_to_world(ext)
    w2c = torch.cat([ext, torch.tensor([[0, 0, 0, 1.0]], dtype=torch.float64).expand(10, 1, 4)], dim=1)
    torch.testing.assert_close(c2w @ w2c, torch.eye(4, dtype=torch.float64).expand(10, 4, 4), atol=1e-12, rtol=0)


def test_pose_encoding_rejects_wrong_width():
    with pytest.raises(InputError, match="last dimension of 9"):
        pose_encoding_to_extri_intri(torch.zeros(1, 2, 7), (14, 14))


def test_rope2d_matches_the_formula():
    gen = torch.Generator().manual_seed(2)
    d, base = 16, 100.0
    x = torch.randn(1, 2, 5, d, generator=gen, dtype=torch.float64)
    pos = torch.tensor([[0, 0], [1, 3], [4, 2], [7, 7], [2, 0]])
    out = RoPE2D(base)(x, pos).numpy()
    xn, expected = x.numpy(), np.empty_like(x.numpy())
    quarter = d // 4
    for t, (py, px) in enumerate(pos.tolist()):
        for half, p in ((0, py), (1, px)):  # first half of the channels: y; second half: x
            for j in range(quarter):
                a, b = half * d // 2 + j, half * d // 2 + j + quarter
                theta = p * base ** (-j / quarter)
                c, s = math.cos(theta), math.sin(theta)
                expected[..., t, a] = xn[..., t, a] * c - xn[..., t, b] * s
                expected[..., t, b] = xn[..., t, b] * c + xn[..., t, a] * s
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_dpt_uv_embedding_matches_the_formula():
    channels, h, w, image_hw = 8, 3, 5, (42, 70)
    base = torch.randn(2, channels, h, w)
    emb = (add_uv_embedding_(base.clone(), image_hw) - base)[1].numpy()
    aspect = image_hw[1] / image_hw[0]
    diag = math.sqrt(1 + aspect**2)
    quarter = channels // 4
    for i in range(h):
        for j in range(w):
            u = (aspect / diag) * (w - 1) / w * (-1 + 2 * j / (w - 1))
            v = (1 / diag) * (h - 1) / h * (-1 + 2 * i / (h - 1))
            want = []
            for coord in (u, v):
                angles = [coord * 100.0 ** (-k / quarter) for k in range(quarter)]
                want += [math.sin(a) for a in angles] + [math.cos(a) for a in angles]
            np.testing.assert_allclose(emb[:, i, j], 0.1 * np.array(want), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("quirk", [True, False])
def test_residual_conv_unit_relu_quirk(quirk):
    torch.manual_seed(3)
    unit = ResidualConvUnit(4, relu_quirk=quirk)
    x = torch.randn(2, 4, 6, 7)
    inner = unit.conv2(F.relu(unit.conv1(F.relu(x))))
    torch.testing.assert_close(unit(x), inner + (F.relu(x) if quirk else x))


def test_dpt_fusion_returns_twice_the_finest_resolution_and_release_names():
    fusion = DPTFusion([4, 8, 16, 16], 8, relu_quirk=True, deepest_has_residual=False)
    names = {n.split(".")[0] for n, _ in fusion.named_parameters()}
    assert names == {*(f"layer{i}_rn" for i in range(1, 5)), *(f"refinenet{i}" for i in range(1, 5))}
    assert not hasattr(fusion.refinenet4, "resConfUnit1") and hasattr(fusion.refinenet3, "resConfUnit1")
    feats = [torch.randn(1, c, s, s + 1) for c, s in ((4, 12), (8, 6), (16, 3), (16, 2))]
    assert fusion(feats).shape == (1, 8, 24, 26)


def test_preprocess_crop_and_pad_geometry():
    tall = np.full((100, 40, 3), 7, np.uint8)
    x, maps = preprocess_images([tall, tall], size=56, patch=14, mode="crop")
    # width -> 56, height -> round(100 * 56 / 40 / 14) * 14 = 140, centre crop to 56 rows
    assert x.shape == (2, 3, 56, 56)
    assert maps[0].resized_size == (140, 56) and maps[0].offset == (42, 0)
    wide = np.zeros((30, 100, 3), np.uint8)
    x, maps = preprocess_images([wide], size=56, patch=14, mode="pad")
    # long side -> 56, short side -> round(30 * 56 / 100 / 14) * 14 = 14, white padding to 56 x 56
    assert x.shape == (1, 3, 56, 56) and maps[0].resized_size == (14, 56) and maps[0].offset == (-21, 0)
    assert (x[0, :, :21] == 1).all() and (x[0, :, 35:] == 1).all() and (x[0, :, 21:35] == 0).all()
    u, v = maps[0].model_to_input(np.array([0.0]), np.array([21.0]))  # first image row, first column
    np.testing.assert_allclose([u[0], v[0]], [(0.5 * 100 / 56) - 0.5, (0.5 * 30 / 14) - 0.5])
    with pytest.raises(InputError, match="mode"):
        preprocess_images([wide], size=56, mode="stretch")


def test_rope_positions_put_special_tokens_at_origin_and_shift_patches():
    agg = Aggregator(VGGT_TINY)
    pos = agg.positions(2, (2, 3), torch.device("cpu"))
    assert pos.shape == (2, 5 + 6, 2)
    assert (pos[:, :5] == 0).all()
    assert pos[0, 5:].tolist() == [[1, 1], [1, 2], [1, 3], [2, 1], [2, 2], [2, 3]]
