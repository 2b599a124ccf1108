"""The `compile` option: torch.compile of the transformer blocks, reached from ModelOptions, the CLI
flag and the node parameter, with outputs equal to eager within a stated tolerance."""

from __future__ import annotations

import argparse
import shutil

import pytest
import torch

from fin3r_lib.errors import SettingError
from fin3r_lib.model_options import ModelOptions
from fin3r_lib.models import load_model
from fin3r_lib.models.compile import compile_blocks
from fin3r_lib.models.cut3r.decoder import DecoderBlock
from fin3r_lib.models.layers.block import Block

#: inductor (the default backend) generates C++ for the CPU and needs a compiler
needs_inductor = pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("clang++") is None,
    reason="torch.compile's inductor backend needs a C++ compiler (g++ or clang++), none on PATH",
)
#: compiled kernels reorder float sums (fused LayerNorm, softmax, GELU): fp32 outputs agree to about 1e-6
ATOL, RTOL = 1e-5, 1e-4


def _options(model: str, compile_: bool) -> ModelOptions:
    return ModelOptions(model, "none", device="cpu", seed=3, compile=compile_)


def _outputs(model: torch.nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.inference_mode():
        return {k: v for k, v in model(images).items() if isinstance(v, torch.Tensor)}


def _images(height: int, width: int, frames: int = 2) -> torch.Tensor:
    return torch.rand(1, frames, 3, height, width, generator=torch.Generator().manual_seed(1))


def test_option_defaults_off_and_reaches_the_cli_and_mappings() -> None:
    assert ModelOptions().compile is False
    parser = argparse.ArgumentParser()
    ModelOptions.add_arguments(parser)
    assert ModelOptions.from_args(parser.parse_args([])).compile is False
    assert ModelOptions.from_args(parser.parse_args(["--compile"])).compile is True
    assert ModelOptions.from_mapping({"compile": True, "other": 1}).compile is True


def test_a_non_boolean_compile_is_one_setting_error() -> None:
    with pytest.raises(SettingError, match=r"compile.*true or false.*'yes'"):
        ModelOptions(compile="yes")


def test_node_parameter_defaults_to_the_library_default() -> None:
    from fin3r_ros.parameters import default_values

    assert default_values()["compile"] is False


def test_every_block_runs_through_dynamo_and_names_are_unchanged() -> None:
    """A recording backend sees the blocks' graphs; the graphs run as traced, so outputs are bit-identical."""
    graphs: list[torch.fx.GraphModule] = []

    def record(gm: torch.fx.GraphModule, example_inputs: list) -> object:
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    eager = load_model(_options("vggt-tiny", False))
    model = load_model(_options("vggt-tiny", False))
    keys = list(model.state_dict())
    blocks = [m for m in model.modules() if isinstance(m, Block)]
    assert compile_blocks(model, backend=record) == len(blocks) > 0
    assert list(model.state_dict()) == keys
    images = _images(28, 42)
    got, want = _outputs(model, images), _outputs(eager, images)
    assert graphs, "no block went through torch.compile"
    assert got.keys() == want.keys()
    for key in want:
        assert torch.equal(got[key], want[key]), key


def test_a_model_without_blocks_is_refused() -> None:
    with pytest.raises(ValueError, match="Linear has no transformer block"):
        compile_blocks(torch.nn.Linear(2, 2))


@needs_inductor
@pytest.mark.parametrize(("name", "height", "width"), [("vggt-tiny", 28, 42), ("cut3r-tiny", 32, 48)])
def test_compiled_matches_eager(name: str, height: int, width: int) -> None:
    """VGGT's encoder/aggregator blocks; CUT3R's encoder and decoder blocks (the decoders must be there)."""
    torch._dynamo.reset()
    model = load_model(_options(name, True))
    if name.startswith("cut3r"):
        assert any(isinstance(m, DecoderBlock) for m in model.modules())
    images = _images(height, width)
    want = _outputs(load_model(_options(name, False)), images)
    got = _outputs(model, images)
    assert got.keys() == want.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], atol=ATOL, rtol=RTOL, msg=key)
