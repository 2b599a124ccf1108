"""Finding and reading checkpoints, and loading them into a model without silent partial loads.

Accepted forms of a checkpoint reference:
- a local file: `.safetensors`, or a torch pickle (`.pt`, `.pth`, `.bin`), optionally a dict with the
  state dict under `model` / `state_dict` (the CUT3R release), keys optionally prefixed `module.`;
- a local Hugging Face folder (`config.json` + `model.safetensors`, or `model.pt`);
- a Hugging Face repo id (`facebook/VGGT-1B`): the cached copy, else fetched into the Hugging Face cache
  unless `HF_HUB_OFFLINE` is set (`fin3r_lib.hub`);
- "default": the variant's released repo and file.
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
from fin3r_lib.hub import is_repo_id, pass_file_hint, resolve_hub_file
from fin3r_lib.safe_load import load_torch_file, read_safetensors

if TYPE_CHECKING:
    from fin3r_lib.models.registry import ModelEntry

log = logging.getLogger(__name__)

TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
FOLDER_FILES = ("model.safetensors", "model.pt", "pytorch_model.bin")
STATE_DICT_ENTRIES = ("model", "state_dict", "model_state_dict")
MAX_LISTED = 8


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


def resolve_checkpoint(ref: str | Path, entry: ModelEntry | None = None, *, tool: str = "python") -> Path:
    """Local path of a checkpoint reference (file, HF folder, repo id, or "default").

    Repo ids and "default" are looked up in the Hugging Face cache first and downloaded only when not
    offline (`fin3r_lib.hub`); a failure says how to pass the file in the syntax of `tool`
    ("cli", "ros" or "python").
    """
    ref_str = str(ref)
    path = Path(ref_str).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        for name in FOLDER_FILES:
            if (path / name).is_file():
                return path / name
        found = sorted(p.name for p in path.iterdir())[:MAX_LISTED]
        raise CheckpointError(f"checkpoint folder {path}: expected one of {', '.join(FOLDER_FILES)}, found {found}")
    if ref_str == "default":
        if entry is None or entry.hf_repo is None:
            raise CheckpointError(no_default_message(entry, tool))
        return resolve_hub_file(entry.hf_repo, entry.hf_filename or FOLDER_FILES[0], tool=tool)
    if is_repo_id(ref_str):
        filename = entry.hf_filename if entry is not None and entry.hf_filename else FOLDER_FILES[0]
        return resolve_hub_file(ref_str, filename, tool=tool)
    raise CheckpointError(
        f"checkpoint {ref_str!r}: expected an existing file (.safetensors/.pt/.pth), a Hugging Face folder, "
        "a repo id like 'facebook/VGGT-1B', or 'default'; no such file or folder"
    )


def no_default_message(entry: ModelEntry | None, tool: str) -> str:
    """Why 'default' cannot be used for `entry`, where its weights are published and which file to pass."""
    if entry is None:
        return "checkpoint 'default' needs a model name to find the released weights; pass a file instead"
    if entry.weights_file is None:
        return (
            f"model {entry.name} has no released weights: it runs with random weights (checkpoint none), "
            f"or pass your own file: {pass_file_hint('checkpoint', 'weights.safetensors', tool)}"
        )
    return (
        f"model {entry.name} has no released 'default' on the Hugging Face Hub: its weights are published at "
        f"{entry.weights_source}. Download {entry.weights_file} from there and pass it: "
        f"{pass_file_hint('checkpoint', entry.weights_file, tool)}"
    )


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
