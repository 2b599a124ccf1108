"""The `precision` option reaches CUT3R's autocast: fp32 weights and heads, encoder/decoder in bf16."""

from __future__ import annotations

import numpy as np
import torch

from fin3r_lib.model_options import ModelOptions
from fin3r_lib.models.loader import load_model


def _depths(precision: str) -> tuple[torch.nn.Module, list[np.ndarray]]:
    model = load_model(ModelOptions(model="cut3r-tiny", checkpoint="none", device="cpu", precision=precision, seed=1))
    rng = np.random.default_rng(0)
    stream = model.new_stream()
    return model, [stream.step(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).depth for _ in range(2)]


def test_bf16_precision_autocasts_the_body_and_keeps_fp32_weights() -> None:
    fp32_model, fp32 = _depths("fp32")
    bf16_model, bf16 = _depths("bf16")
    assert fp32_model.autocast_dtype is None
    assert bf16_model.autocast_dtype == torch.bfloat16
    assert {p.dtype for p in bf16_model.parameters()} == {torch.float32}
    for a, b in zip(fp32, bf16, strict=True):
        assert b.dtype == np.float32 and np.isfinite(b).all()
        assert np.abs(a - b).max() > 0  # bf16 rounding inside the encoder and decoder changes the numbers
        np.testing.assert_allclose(b, a, rtol=0.1)  # ... by bf16's rounding, not more


def test_bf16_autocast_reaches_the_encoder_but_not_the_heads() -> None:
    model = load_model(ModelOptions(model="cut3r-tiny", checkpoint="none", device="cpu", precision="bf16"))
    seen: dict[str, torch.dtype] = {}

    def record(name: str):  # a forward hook that notes its module's output dtype and returns None
        return lambda module, args, out: seen.__setitem__(name, out.dtype)

    hooks = [
        model.enc_blocks[0].mlp.fc1.register_forward_hook(record("encoder")),
        model.downstream_head.pose_head.register_forward_hook(record("head")),
    ]
    with torch.inference_mode():
        model.step_tensor(torch.rand(1, 3, 48, 64), model.initial_state(1))
    for h in hooks:
        h.remove()
    assert seen == {"encoder": torch.bfloat16, "head": torch.float32}
