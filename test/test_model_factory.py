"""The model factory's user-facing entry points: names, devices, and one clear load error."""

import pytest
import torch

from fin3r_lib.errors import ModelLoadError, UnknownModelError
from fin3r_lib.models import build_model, list_models, load_model, resolve_device


def test_registered_variants():
    assert {"vggt-1b", "vggt-1b-commercial", "vggt-tiny", "cut3r-512-dpt", "cut3r-224-linear", "cut3r-tiny"} <= set(
        list_models()
    )


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownModelError, match=r"unknown model 'vggt-2b'; expected one of: .*vggt-tiny"):
        build_model("vggt-2b")


def test_auto_device_is_cuda_only_when_torch_sees_a_gpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


def test_load_model_turns_every_failure_into_one_error(tmp_path):
    with pytest.raises(ModelLoadError, match=r"cannot load model 'vggt-tiny' \(checkpoint '.*missing\.pt'"):
        load_model("vggt-tiny", str(tmp_path / "missing.pt"))
    with pytest.raises(ModelLoadError, match="UnknownModelError"):
        load_model("nope")


def test_load_model_with_no_checkpoint_gives_random_weights_in_eval_mode():
    model = load_model("vggt-tiny", "none", device="auto")
    assert model.name == "vggt-tiny" and not model.training
