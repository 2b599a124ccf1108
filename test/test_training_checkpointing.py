"""Gradient checkpointing of the student's blocks: same loss and adapter gradients, and really recomputed."""

from __future__ import annotations

import copy
from collections import Counter

import pytest
import torch
from test_adapter_common import randomize_lora

from fin3r_lib.model_options import ModelOptions
from fin3r_lib.models.base import ReconstructionModel
from fin3r_lib.training import student as student_module
from fin3r_lib.training.student import build_student, enable_gradient_checkpointing, trainable_parameters

#: vggt-tiny's block lists, counted by hand from its config: 2 encoder, 4 frame and 4 global blocks
TINY_BLOCKS = {"aggregator.patch_embed.blocks": 2, "aggregator.frame_blocks": 4, "aggregator.global_blocks": 4}


def student() -> ReconstructionModel:
    """vggt-tiny at its seeded random weights with the adapter the trainer injects, B made non-zero so
    every LoRA tensor gets a gradient (with a fresh zero B, lora_A's gradient is zero)."""
    model = build_student(ModelOptions("vggt-tiny", "none", device="cpu", seed=0), "adapter")
    randomize_lora(model, std=0.05)
    return model.eval()


def images() -> torch.Tensor:
    """Two views of 28x42 (multiples of vggt-tiny's patch size 14)."""
    return torch.rand(1, 2, 3, 28, 42, generator=torch.Generator().manual_seed(1))


def loss_of(pred: dict[str, torch.Tensor]) -> torch.Tensor:
    """A scalar that reaches every output head the trainer's losses use (depth, its confidence, points)."""
    return pred["depth"].mean() + pred["depth_conf"].log().mean() + pred["world_points"].square().mean()


def count_block_calls(model: ReconstructionModel) -> tuple[Counter, list]:
    """Hooks on each block's attention (a child of the block, so it runs again when the block is recomputed)."""
    calls: Counter = Counter()
    handles = []
    for path in TINY_BLOCKS:
        for i, block in enumerate(model.get_submodule(path)):
            key = f"{path}.{i}"
            handles.append(block.attn.register_forward_hook(lambda *_, key=key: calls.update([key])))
    return calls, handles


def forward_backward(model: ReconstructionModel) -> tuple[torch.Tensor, dict[str, torch.Tensor], Counter, Counter]:
    """Loss, the trainable tensors' gradients, and block calls after the forward and after the backward."""
    calls, handles = count_block_calls(model)
    loss = loss_of(model(images()))
    after_forward = Counter(calls)
    loss.backward()
    for handle in handles:
        handle.remove()
    grads = {n: p.grad.detach().clone() for n, p in trainable_parameters(model).items()}
    return loss.detach(), grads, after_forward, Counter(calls)


def test_checkpointing_gives_the_same_loss_and_adapter_gradients_and_recomputes_every_block() -> None:
    plain = student()
    checkpointed = copy.deepcopy(plain)
    assert enable_gradient_checkpointing(checkpointed) == sum(TINY_BLOCKS.values()) == 10
    assert enable_gradient_checkpointing(checkpointed) == 0  # already wrapped: nothing wrapped twice

    loss_p, grads_p, fwd_p, all_p = forward_backward(plain)
    loss_c, grads_c, fwd_c, all_c = forward_backward(checkpointed)

    assert torch.equal(loss_c, loss_p)  # the recompute runs the same kernels on the same inputs: bit-exact
    assert set(grads_c) == set(grads_p) and len(grads_p) == 2 * TINY_BLOCKS["aggregator.patch_embed.blocks"]
    assert all(".lora_A." in n or ".lora_B." in n for n in grads_p)
    for name, grad in grads_p.items():
        assert grad.abs().max() > 0, f"{name}: no gradient reached the adapter"
        assert torch.equal(grads_c[name], grad), name

    # each block runs once per forward; checkpointed blocks run once more in the backward
    blocks = [f"{path}.{i}" for path, n in TINY_BLOCKS.items() for i in range(n)]
    assert fwd_p == fwd_c == dict.fromkeys(blocks, 1)
    assert all_p == dict.fromkeys(blocks, 1)
    assert all_c == dict.fromkeys(blocks, 2)


def test_checkpointed_blocks_run_once_without_grad() -> None:
    """Inference (validation, previews) never pays for checkpointing: no recompute under no_grad."""
    model = student()
    enable_gradient_checkpointing(model)
    calls, handles = count_block_calls(model)
    with torch.no_grad():
        model(images())
    for handle in handles:
        handle.remove()
    assert set(calls.values()) == {1} and len(calls) == 10


def test_checkpointing_silently_not_applied_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The recompute count above is what proves checkpointing is active: with `checkpoint` replaced by a
    plain call (the wrapper installed, nothing checkpointed) the gradients still match but no block
    runs a second time, so the main test's `all_c` assertion fails."""
    monkeypatch.setattr(student_module, "checkpoint", lambda fn, *a, use_reentrant, **kw: fn(*a, **kw))
    model = student()
    assert enable_gradient_checkpointing(model) == 10
    _, _, _, calls = forward_backward(model)
    assert set(calls.values()) == {1}
