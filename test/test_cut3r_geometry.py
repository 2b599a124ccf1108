"""CUT3R's pose encoding, focal estimation and preprocessing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fin3r_lib.models.cut3r.focal import estimate_focal, intrinsics_from_points
from fin3r_lib.models.cut3r.pose import (
    cam_to_world_to_pose_encoding,
    matrix_to_quaternion,
    pose_encoding_to_cam_to_world,
    pose_encoding_to_raw,
    quaternion_to_matrix,
    raw_to_pose_encoding,
)
from fin3r_lib.models.cut3r.preprocess import preprocess_image


def test_pose_encoding_scales_translation_by_expm1() -> None:
    raw = torch.tensor([[0.0, 0.0, 1.0, -2.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    enc = raw_to_pose_encoding(raw)
    assert torch.allclose(enc[0, :3], torch.tensor([0.0, 0.0, math.e - 1], dtype=torch.float64))
    assert torch.equal(enc[0, 3:], torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64))  # w >= 0, unit
    expected = torch.tensor(
        [[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, math.e - 1], [0, 0, 0, 1.0]], dtype=torch.float64
    )
    assert torch.allclose(pose_encoding_to_cam_to_world(enc)[0], expected, atol=1e-15)


def test_pose_conversion_round_trips() -> None:
    raw = torch.randn(64, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    enc = raw_to_pose_encoding(raw)
    c2w = pose_encoding_to_cam_to_world(enc)
    rot = c2w[:, :3, :3]
    assert torch.allclose(rot @ rot.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(64, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(rot), torch.ones(64, dtype=torch.float64))
    back = cam_to_world_to_pose_encoding(c2w)
    assert torch.allclose(back, enc, atol=1e-12)
    raw_back = pose_encoding_to_raw(back)
    assert torch.allclose(raw_back[:, :3], raw[:, :3], atol=1e-12)
    assert torch.allclose(raw_to_pose_encoding(raw_back), enc, atol=1e-12)


def test_quaternion_is_scalar_first() -> None:
    half = math.sqrt(0.5)
    rot = quaternion_to_matrix(torch.tensor([half, 0.0, 0.0, half], dtype=torch.float64))  # 90 deg about z
    assert torch.allclose(
        rot @ torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64),
        torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64),
        atol=1e-12,
    )
    assert torch.allclose(matrix_to_quaternion(rot), torch.tensor([half, 0.0, 0.0, half], dtype=torch.float64))


def _synthetic_points(focal: float, h: int, w: int, outliers: float, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    z = rng.uniform(0.5, 5.0, (h, w))
    pts = np.stack([(u - w // 2) * z / focal, (v - h // 2) * z / focal, z], axis=-1)
    bad = rng.random((h, w)) < outliers  # wrong directions: x, y off by up to +-50 %
    pts[bad, :2] *= rng.uniform(0.5, 1.5, (int(bad.sum()), 2))
    return torch.from_numpy(pts)[None]


@pytest.mark.parametrize("focal", [180.0, 525.0])
def test_focal_estimation_recovers_known_focal(focal: float) -> None:
    pts = _synthetic_points(focal, 96, 128, outliers=0.1)
    assert abs(estimate_focal(pts).item() - focal) / focal < 0.01
    k = intrinsics_from_points(pts)[0]
    assert k[0, 2].item() == 64 and k[1, 2].item() == 48 and k[0, 0] == k[1, 1]


def test_preprocess_long_side_and_crop_to_multiples_of_16() -> None:
    img = np.random.default_rng(0).integers(0, 256, (500, 700, 3), dtype=np.uint8)
    tensor, mapping = preprocess_image(img, 512)
    assert mapping.resized_size == (366, 512)
    assert tuple(tensor.shape) == (3, 352, 512) and mapping.model_size == (352, 512)
    assert mapping.offset == (7, 0)
    assert tensor.min() >= 0.0 and tensor.max() <= 1.0


def test_preprocess_at_model_size_keeps_pixels() -> None:
    img = np.random.default_rng(1).integers(0, 256, (384, 512, 3), dtype=np.uint8)
    tensor, mapping = preprocess_image(img, 512)
    assert mapping.model_size == (384, 512) and mapping.offset == (0, 0)
    np.testing.assert_array_equal(tensor.permute(1, 2, 0).numpy(), img.astype(np.float32) / 255)


def test_preprocess_square_image_is_cropped_to_four_by_three() -> None:
    tensor, mapping = preprocess_image(np.zeros((300, 300, 3), np.uint8), 512)
    assert mapping.model_size == (384, 512) and mapping.offset == (64, 0)
    assert tuple(tensor.shape) == (3, 384, 512)


def test_preprocess_square_crop_for_224_model() -> None:
    tensor, mapping = preprocess_image(np.zeros((480, 640, 3), np.uint8), 224, square_crop=True)
    assert mapping.resized_size == (224, 299) and mapping.model_size == (224, 224) and mapping.offset == (0, 37)
    assert tuple(tensor.shape) == (3, 224, 224)
