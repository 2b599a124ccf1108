"""The model factory's user-facing entry points: names, devices, and one clear load error."""

import pytest
import torch

from fin3r_lib.errors import ModelLoadError, UnknownModelError
from fin3r_lib.model_options import ModelOptions
from fin3r_lib.models import build_model, list_models, load_model, resolve_device


def test_registered_variants():
    assert {"vggt-1b", "vggt-1b-commercial", "vggt-tiny", "cut3r-512-dpt", "cut3r-224-linear", "cut3r-tiny"} <= set(
        list_models()
    )


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownModelError, match=r"unknown model 'vggt-2b'; expected one of: .*vggt-tiny"):
        build_model("vggt-2b")


def test_auto_device_is_cpu_when_no_gpu_is_visible():
    """With every GPU hidden (CUDA_VISIBLE_DEVICES empty) `auto` must pick the CPU, whatever this machine has."""
    import os
    import subprocess
    import sys

    code = "from fin3r_lib.models import resolve_device; print(resolve_device('auto').type)"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "cpu"
    assert resolve_device("cpu") == torch.device("cpu")


def test_load_model_turns_every_failure_into_one_error(tmp_path):
    with pytest.raises(ModelLoadError, match=r"cannot load model 'vggt-tiny' \(checkpoint '.*missing\.pt'"):
        load_model(ModelOptions("vggt-tiny", str(tmp_path / "missing.pt")))
    with pytest.raises(ModelLoadError, match="UnknownModelError"):
        load_model(ModelOptions("nope"))


def test_load_model_with_no_checkpoint_gives_random_weights_in_eval_mode():
    model = load_model(ModelOptions("vggt-tiny", "none", device="auto"))
    assert model.name == "vggt-tiny" and not model.training
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(m.weight.std() > 0 for m in linears)  # drawn, not constant or zero


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_random_weights_are_seeded_and_leave_the_global_generator_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = _weights(load_model(ModelOptions("cut3r-tiny", "none", device="cpu", seed=0)))
    assert torch.equal(torch.rand(3), expected_next)  # the caller's random stream is untouched
    again = _weights(load_model(ModelOptions("cut3r-tiny", "none", device="cpu", seed=0)))
    other = _weights(load_model(ModelOptions("cut3r-tiny", "none", device="cpu", seed=1)))
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert sum(not torch.equal(first[k], other[k]) for k in first if first[k].is_floating_point()) > len(first) // 2


def test_random_vggt_camera_head_predicts_finite_positive_focal_lengths():
    import numpy as np

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (84, 112, 3), dtype=np.uint8) for _ in range(3)]
    for seed in (1, 2, 3):  # plain random heads give infinite focal lengths with these seeds
        rec = load_model(ModelOptions("vggt-tiny", "none", device="cpu", seed=seed)).predict(images)
        focal = rec.intrinsics[:, [0, 1], [0, 1]]
        assert np.isfinite(focal).all() and (focal > 0).all(), seed
