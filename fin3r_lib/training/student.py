"""The student: a registered backbone with its base weights, the Fin3R adapter, and what may change.

`trainable: adapter` trains only the LoRA tensors (the paper's method); `encoder` trains the encoder's
transformer blocks without an adapter (the paper's full-encoder fine-tuning ablation). The decoder and
heads are frozen in both; `FrozenCheck` proves they come out bit-identical.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from fin3r_lib.adapter import apply_adapter
from fin3r_lib.errors import Fin3rError
from fin3r_lib.model_options import ModelOptions
from fin3r_lib.models.base import ReconstructionModel
from fin3r_lib.models.loader import build_model, load_model, resolve_device


class TrainingError(Fin3rError):
    """Training cannot go on or produced something wrong (frozen tensors changed, non-finite loss)."""


def set_trainable(model: ReconstructionModel, trainable: str, rank: int, alpha: float) -> ReconstructionModel:
    """Freeze everything, then open the adapter (after injecting it) or the encoder blocks."""
    model.requires_grad_(False)
    if trainable == "adapter":
        apply_adapter(model, rank=rank, alpha=alpha)  # leaves only the LoRA tensors trainable
    elif trainable == "encoder":
        model.encoder_blocks().requires_grad_(True)
    else:
        raise TrainingError(f"trainable: expected adapter or encoder, got {trainable!r}")
    return model


def build_student(
    options: ModelOptions, trainable: str = "adapter", rank: int = 8, alpha: float = 8.0
) -> ReconstructionModel:
    """The backbone `options` name (checkpoint, device), made trainable; its weights stay fp32 whatever
    `options.precision` (the trainer's `precision` is its autocast).

    Random weights (`checkpoint: none`) are `load_model`'s seeded ones (`options.seed`), so
    `fin3r reconstruct --checkpoint none --seed S` runs the same base an adapter trained with
    `checkpoint: none`, `seed: S` was trained on.
    """
    if options.random_weights and resolve_device(options.device).type != "meta":
        model = load_model(options)
    else:
        ckpt = None if options.random_weights else options.checkpoint
        model = build_model(options.model, ckpt, device=options.device)
    return set_trainable(model, trainable, rank, alpha)


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Name -> parameter of every tensor that receives gradients."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def count_trainable(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in trainable_parameters(model).values())


class FrozenCheck:
    """A copy of every non-trainable parameter and buffer, to prove later that none of them changed."""

    def __init__(self, model: nn.Module) -> None:
        trainable = set(trainable_parameters(model))
        self.reference = {n: t.detach().to("cpu", copy=True) for n, t in _named_tensors(model) if n not in trainable}

    def changed(self, model: nn.Module) -> list[str]:
        """Names of frozen tensors that differ bit-wise (or are missing) now."""
        now = dict(_named_tensors(model))
        out = []
        for name, ref in self.reference.items():
            cur = now.get(name)
            if cur is None or cur.shape != ref.shape or not torch.equal(cur.detach().cpu(), ref):
                out.append(name)
        return out

    def verify(self, model: nn.Module) -> int:
        """Raise TrainingError naming the changed tensors; returns how many tensors were checked."""
        changed = self.changed(model)
        if changed:
            raise TrainingError(f"{len(changed)} frozen tensors changed during training: {', '.join(changed[:5])}")
        return len(self.reference)


def _named_tensors(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    yield from model.named_parameters()
    yield from model.named_buffers()


def block_lists(model: nn.Module) -> list[nn.ModuleList]:
    """The transformer block lists of a backbone (every ModuleList named `*blocks*`, e.g. `dec_blocks_state`)."""
    return [m for n, m in model.named_modules() if isinstance(m, nn.ModuleList) and "blocks" in n.rsplit(".", 1)[-1]]


def enable_gradient_checkpointing(model: nn.Module) -> int:
    """Recompute each encoder/decoder block's activations in the backward pass instead of storing them.

    Gradients flow through the frozen decoder, so its activations are the memory cost; outputs and
    gradients are unchanged. Returns the number of blocks wrapped.
    """
    count = 0
    for blocks in block_lists(model):
        for block in blocks:
            if getattr(block, "_fin3r_checkpointed", False):
                continue
            plain = block.forward

            def forward(*args, _plain=plain, **kwargs):
                if torch.is_grad_enabled():
                    return checkpoint(_plain, *args, use_reentrant=False, **kwargs)
                return _plain(*args, **kwargs)

            block.forward = forward
            block._fin3r_checkpointed = True
            count += 1
    return count
