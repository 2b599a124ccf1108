"""Reading checkpoints and loading them into a model without silent partial loads.

A file: `.safetensors`, or a torch pickle (`.pt`, `.pth`, `.bin`), optionally a dict with the state dict
under `model` / `state_dict` (the CUT3R release), keys optionally prefixed `module.`. Which file a
reference (folder, repo id, "default") means is `fin3r_lib.models.checkpoint_ref`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from fin3r_lib.errors import CheckpointError
from fin3r_lib.models.checkpoint_ref import MAX_LISTED, resolve_checkpoint
from fin3r_lib.safe_load import load_torch_file, read_safetensors

if TYPE_CHECKING:
    from fin3r_lib.models.registry import ModelEntry

log = logging.getLogger(__name__)

TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
STATE_DICT_ENTRIES = ("model", "state_dict", "model_state_dict")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from a local file (safetensors or torch pickle), on the CPU.

    Torch pickles go through `fin3r_lib.safe_load.load_torch_file`: tensors and plain data load,
    foreign objects (the CUT3R release's omegaconf `args`) become inert placeholders, nothing in the
    file is imported or run.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        obj: Any = read_safetensors(path)[0]
    else:
        obj = load_torch_file(path)
    return extract_state_dict(obj, path)


def extract_state_dict(obj: Any, source: str | Path = "<memory>") -> dict[str, torch.Tensor]:
    """The tensor mapping inside a loaded checkpoint object (plain, or under model/state_dict)."""
    if isinstance(obj, Mapping):
        for key in STATE_DICT_ENTRIES:
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
    raise CheckpointError(
        f"checkpoint {source}: expected a state dict (name -> tensor) or a dict with one under "
        f"{'/'.join(STATE_DICT_ENTRIES)}, got {type(obj).__name__}"
    )


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    """Remove `prefix` from every key that has it (DataParallel / DDP checkpoints)."""
    return {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state.items()}


@dataclass
class KeyReport:
    """How a state dict's names and shapes differ from a model's."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self) -> str:
        parts = []
        for label, items in (("missing", self.missing), ("unexpected", self.unexpected)):
            if items:
                shown = ", ".join(items[:MAX_LISTED])
                more = f" (+{len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else ""
                parts.append(f"{len(items)} {label} keys: {shown}{more}")
        if self.mismatched:
            shown = ", ".join(
                f"{k} (checkpoint {tuple(a)}, model {tuple(b)})" for k, a, b in self.mismatched[:MAX_LISTED]
            )
            more = f" (+{len(self.mismatched) - MAX_LISTED} more)" if len(self.mismatched) > MAX_LISTED else ""
            parts.append(f"{len(self.mismatched)} mis-shaped keys: {shown}{more}")
        return "; ".join(parts)


def compare_keys(model: nn.Module, state: Mapping[str, torch.Tensor]) -> KeyReport:
    """Names and shapes of `state` against `model.state_dict()`, in the model's key order."""
    own = model.state_dict()
    report = KeyReport()
    for name, tensor in own.items():
        if name not in state:
            report.missing.append(name)
        elif tuple(state[name].shape) != tuple(tensor.shape):
            report.mismatched.append((name, tuple(state[name].shape), tuple(tensor.shape)))
    report.unexpected = [k for k in state if k not in own]
    return report


def load_state_dict_exact(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str | Path = "<memory>",
    drop_prefixes: Iterable[str] = (),
) -> list[str]:
    """Load `state` into `model` with every name and shape matching, or raise CheckpointError.

    Keys starting with one of `drop_prefixes` are removed first (returned, and logged). A model built
    on the meta device gets the checkpoint's tensors assigned (no second copy in memory).
    """
    drop_prefixes = tuple(drop_prefixes)
    state = strip_prefix(state)
    dropped = [k for k in state if drop_prefixes and k.startswith(drop_prefixes)]
    if dropped:
        state = {k: v for k, v in state.items() if k not in set(dropped)}
        log.info("checkpoint %s: dropped %d keys under %s", source, len(dropped), ", ".join(drop_prefixes))
    report = compare_keys(model, state)
    if not report.ok:
        raise CheckpointError(f"checkpoint {source} does not match model {type(model).__name__}: {report.describe()}")
    on_meta = any(t.is_meta for t in model.state_dict().values())
    model.load_state_dict(state, strict=True, assign=on_meta)
    leftover = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:
        raise CheckpointError(
            f"model {type(model).__name__} still has tensors on the meta device after loading: {leftover[:MAX_LISTED]}"
        )
    return dropped


def load_checkpoint_into(
    model: nn.Module, ref: str | Path, entry: ModelEntry | None = None, *, tool: str = "python"
) -> list[str]:
    """Resolve, read and exactly load a checkpoint reference; returns the keys the model chose to drop.

    A model may define `checkpoint_drop_prefixes` (e.g. VGGT without its track head) and
    `checkpoint_filter(state) -> state` (maps a release's names onto its own in one visible place).
    """
    path = resolve_checkpoint(ref, entry, tool=tool)
    state = read_state_dict(path)
    filt = getattr(model, "checkpoint_filter", None)
    if callable(filt):
        state = filt(state)
    dropped = load_state_dict_exact(model, state, path, getattr(model, "checkpoint_drop_prefixes", ()))
    model.checkpoint_path = str(path)  # the adapter records this file's sha256 when it is saved
    return dropped
