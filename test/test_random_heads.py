"""The pinhole prior of random CroCo-family heads: positive focal lengths for any seed, outputs still the weights'."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fin3r_lib.model_options import ModelOptions
from fin3r_lib.models import build_model, load_model
from fin3r_lib.models.cut3r.focal import estimate_focal
from fin3r_lib.models.random_heads import pinhole_points

NAMES = ["cut3r-tiny", "dust3r-tiny", "mast3r-tiny"]


def _images(seed: int, size: tuple[int, int] = (96, 128)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(2)]


def _focals(model, images: list[np.ndarray]) -> np.ndarray:
    """Focal lengths (fx) of each image, streamed (CUT3R) or each as the pair (I, I) (DUSt3R, MASt3R)."""
    if getattr(model, "streaming", False):
        stream = model.new_stream()
        return np.array([stream.step(img).intrinsics[0, 0] for img in images])
    return np.array([model.predict([img]).frame(0).intrinsics[0, 0] for img in images])


def test_pinhole_points_fit_their_focal_length() -> None:
    pts = pinhole_points(48, 64, torch.float64, torch.device("cpu"))
    assert pts[0, 0].tolist() == [-32 / 64, -24 / 64, 1.0]  # pixel (0, 0), principal point (32, 24)
    assert estimate_focal(pts[None]).item() == pytest.approx(64.0, rel=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_random_weights_give_positive_focals_for_every_seed(name, small_scenes) -> None:
    real = list(small_scenes["rgb"][::25])  # two real 160x120 frames
    for seed in range(5):
        model = load_model(ModelOptions(name, "none", device="cpu", seed=seed))
        focals = _focals(model, real + _images(seed))
        # the prior's focal is max(H, W) of the model grid; the random part only perturbs it
        assert (focals > 0).all(), (seed, focals)


@pytest.mark.parametrize("name", NAMES)
def test_outputs_still_depend_on_the_weights_and_built_models_have_no_prior(name) -> None:
    images = _images(0)
    first, other = (load_model(ModelOptions(name, "none", device="cpu", seed=s)) for s in (0, 1))
    a, b = first.predict(images[:1]), other.predict(images[:1])
    assert not np.array_equal(a.world_points, b.world_points)
    torch.manual_seed(0)
    plain = build_model(name)  # same weights as seed 0, no hook: the raw random prediction
    plain_focal = plain.predict(images[:1]).frame(0).intrinsics[0, 0]
    assert abs(plain_focal) < 10 and a.frame(0).intrinsics[0, 0] > 50
