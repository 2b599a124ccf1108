"""Adapter files: the authors' PEFT-wrapped torch files and our own safetensors with metadata.

Two layouts are read, both reduced to one LoRA (A, B) pair per encoder block:
- the authors' (`vggt_lora.pth`): each encoder block's `attn` was wrapped by `get_peft_model`, so keys read
  `{blocks}.{i}.attn.base_model.model.qkv.lora_A.default.weight`; the file may also hold the wrapped base
  tensors (`...attn.base_model.model.qkv.base_layer.weight`, `...proj.weight`) and every other model key.
  Their alpha is not stored; the released adapters use alpha = 8.
- ours, one file (`.safetensors`): PEFT state-dict keys without the adapter name
  (`{blocks}.{i}.attn.qkv.lora_A.weight`), with metadata: format, version, base model, checkpoint sha256,
  rank, alpha, re-normalization, targets, and the caller's own metadata (JSON; the trainer's config/metrics).
- ours, PEFT folder (`adapter_config.json` + `adapter_model.safetensors`): the standard layout PEFT's
  `save_pretrained` writes (plain `LoraConfig` JSON, keys `base_model.model.{blocks}.{i}.attn.qkv.lora_A.weight`),
  so it can be shared on the Hub like any PEFT adapter; our metadata sits in the safetensors header.
  PEFT itself would load it as plain LoRA: the `renorm` entry is what makes our loader re-normalize.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch
from peft import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import save_file

from fin3r_lib.adapter.config import ADAPTER_NAME, DEFAULT_ALPHA, AdapterConfig, AdapterError
from fin3r_lib.adapter.inject import adapter_config, apply_adapter, lora_config, target_pattern
from fin3r_lib.errors import CheckpointError
from fin3r_lib.hub import is_repo_id, resolve_hub_folder
from fin3r_lib.models.base import ReconstructionModel
from fin3r_lib.models.checkpoint import extract_state_dict, strip_prefix
from fin3r_lib.safe_load import load_torch_file, read_safetensors

FORMAT = "fin3r-adapter"
FORMAT_VERSION = 1
#: the re-normalization our adapters use (metadata `renorm`): q, k, v of the fused qkv kept at the base norms
RENORM = "qkv"
#: file names of the standard PEFT adapter folder
PEFT_CONFIG_NAME = "adapter_config.json"
PEFT_WEIGHTS_NAME = "adapter_model.safetensors"
#: prefix PEFT's `PeftModel` puts before every module path in its adapter files
PEFT_PREFIX = "base_model.model."
#: alpha of the authors' released adapters (their files do not store it)
AUTHORS_ALPHA = DEFAULT_ALPHA

_AUTHORS_KEY = re.compile(r"(?P<blocks>.+)\.(?P<i>\d+)\.attn\.base_model\.model\.qkv\.lora_(?P<ab>[AB])\.[^.]+\.weight")
_OUR_KEY = re.compile(r"(?P<blocks>.+)\.(?P<i>\d+)\.attn\.qkv\.lora_(?P<ab>[AB])\.weight")
_WRAPPER = ".base_model.model."


@dataclass
class AdapterFile:
    """An adapter file reduced to its parts: LoRA pairs per block and what the file says about itself."""

    blocks_path: str
    lora: dict[int, dict[str, torch.Tensor]]  # block index -> {"A": (r, dim), "B": (3*dim, r)}
    alpha: float
    base_model: str = ""
    checkpoint_sha256: str = ""
    metadata: dict = field(default_factory=dict)  # the saver's own metadata (e.g. training config, metrics)
    base_tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # authors' layout: other keys, unwrapped

    @property
    def rank(self) -> int:
        return int(next(iter(self.lora.values()))["A"].shape[0])


def save_adapter(model: ReconstructionModel, path: str | Path, metadata: dict | None = None) -> Path:
    """Write the model's adapter (LoRA tensors only) with our metadata; returns the path written.

    A `.safetensors` path gives our single file; any other path a PEFT adapter folder (see the module
    docstring). `metadata` (JSON-serializable) is stored as given and returned by `read_adapter_file`."""
    config = adapter_config(model)
    if config is None:
        raise AdapterError(f"model {model.name or type(model).__name__} has no adapter to save")
    if metadata is not None and not isinstance(metadata, dict):
        raise AdapterError(f"adapter metadata: expected a dict, got {type(metadata).__name__}")
    try:
        user = json.dumps(metadata or {}, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AdapterError(f"adapter metadata: expected a JSON-serializable dict, got {exc}") from exc
    path = Path(path)
    state = get_peft_model_state_dict(model, adapter_name=ADAPTER_NAME)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "base_model": model.name,
        "checkpoint_sha256": checkpoint_sha256(model),
        "rank": str(config.rank),
        "alpha": repr(float(config.alpha)),
        "renorm": RENORM,
        "target_modules": target_pattern(model),
        "num_blocks": str(len(model.encoder_blocks())),
        "metadata": user,
    }
    if path.suffix == ".safetensors":
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(path), metadata=header)
        return path
    if path.suffix and not path.is_dir():
        raise AdapterError(
            f"adapter file: expected a .safetensors path, got {path.name!r} (or a folder path without a suffix "
            "for the PEFT layout)"
        )
    if path.exists() and not path.is_dir():
        raise AdapterError(f"adapter: expected a .safetensors file or a folder, got the file {path}")
    peft_config = lora_config(config, target_pattern(model))
    peft_config.base_model_name_or_path = model.name
    peft_config.save_pretrained(str(path))
    save_file({PEFT_PREFIX + k: v for k, v in tensors.items()}, str(path / PEFT_WEIGHTS_NAME), metadata=header)
    return path


def checkpoint_sha256(model: ReconstructionModel) -> str:
    """sha256 of the checkpoint file the model's weights were loaded from; empty for random weights."""
    source = getattr(model, "checkpoint_path", "")
    if not source or not Path(source).is_file():
        return ""
    stat = Path(source).stat()
    return _file_sha256(str(Path(source).resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=8)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """Hash of a file, cached per (path, size, mtime): the trainer saves adapters many times."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def locate_adapter(ref: str | Path, tool: str = "python") -> Path:
    """A local adapter file or folder, or the cached snapshot of a Hub repo id holding a PEFT adapter folder.

    Repo ids follow the checkpoint rules (`fin3r_lib.hub`): cache first, no download when offline, and a
    failure that says how to pass a local copy to `tool`.
    """
    path = Path(ref).expanduser()
    if path.exists() or not is_repo_id(str(ref)):
        return path
    return resolve_hub_folder(str(ref), [PEFT_CONFIG_NAME, PEFT_WEIGHTS_NAME], tool=tool, option="adapter")


def load_adapter(model: ReconstructionModel, path: str | Path, *, tool: str = "python") -> ReconstructionModel:
    """Load an adapter (file, PEFT folder or Hub repo id, see `locate_adapter`) into `model`.

    The adapter (ours or the authors') is applied first if needed.

    Checks that the file targets this model's encoder blocks, covers every block with one rank, and
    matches an adapter already applied (rank, alpha); any mismatch raises AdapterError. Base tensors the
    file carries are compared with the model's and a warning gives the largest difference. Returns `model`.
    """
    path = locate_adapter(path, tool)
    adapter = read_adapter_file(path)
    check_compatible(model, adapter, path)
    config = AdapterConfig(adapter.rank, adapter.alpha)
    current = adapter_config(model)
    if current is None:
        apply_adapter(model, config.rank, config.alpha)
    elif current != config:
        raise AdapterError(
            f"adapter file {path}: rank {config.rank}, alpha {config.alpha} does not match the adapter already "
            f"applied to the model (rank {current.rank}, alpha {current.alpha})"
        )
    state = {
        f"{adapter.blocks_path}.{i}.attn.qkv.lora_{ab}.weight": tensor
        for i, pair in adapter.lora.items()
        for ab, tensor in pair.items()
    }
    result = set_peft_model_state_dict(model, state, adapter_name=ADAPTER_NAME)
    if result.unexpected_keys:
        raise AdapterError(f"adapter file {path}: keys the model does not have: {result.unexpected_keys[:4]}")
    if adapter.base_tensors:
        _warn_on_base_difference(model, adapter.base_tensors, path)
    return model


def read_adapter_file(path: str | Path) -> AdapterFile:
    """Read and parse an adapter file or PEFT adapter folder of any layout (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        return _read_peft_folder(path)
    if not path.is_file():
        raise AdapterError(f"adapter file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            tensors, metadata = read_safetensors(path, what="adapter file")
            if metadata.get("format") == FORMAT:
                return _parse_ours(tensors, metadata, path)
            state = strip_prefix(tensors)
        else:
            state = strip_prefix(extract_state_dict(load_torch_file(path, what="adapter file"), path))
    except CheckpointError as exc:
        raise AdapterError(str(exc)) from exc
    return _parse_authors(state, path)


def _read_peft_folder(path: Path) -> AdapterFile:
    """A PEFT adapter folder written by `save_adapter` (plain JSON and safetensors; nothing executed)."""
    config_path, weights_path = path / PEFT_CONFIG_NAME, path / PEFT_WEIGHTS_NAME
    missing = [p.name for p in (config_path, weights_path) if not p.is_file()]
    if missing:
        raise AdapterError(
            f"adapter folder {path}: expected the PEFT files {PEFT_CONFIG_NAME} and {PEFT_WEIGHTS_NAME}, "
            f"missing {missing}"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterError(f"adapter folder {path}: {PEFT_CONFIG_NAME} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        got = config.get("peft_type") if isinstance(config, dict) else type(config).__name__
        raise AdapterError(f"adapter folder {path}: expected a PEFT LoRA config (peft_type 'LORA'), got {got!r}")
    try:
        state, metadata = read_safetensors(weights_path, what="adapter file")
    except CheckpointError as exc:
        raise AdapterError(str(exc)) from exc
    if metadata.get("format") != FORMAT:
        raise AdapterError(
            f"adapter folder {path}: {PEFT_WEIGHTS_NAME} has no fin3r metadata (format {FORMAT!r}, renorm "
            f"{RENORM!r}); a plain PEFT LoRA is not a re-normalized adapter"
        )
    if any(not k.startswith(PEFT_PREFIX) for k in state):
        bad = next(k for k in state if not k.startswith(PEFT_PREFIX))
        raise AdapterError(f"adapter folder {path}: expected PEFT keys starting {PEFT_PREFIX!r}, got {bad!r}")
    adapter = _parse_ours({k[len(PEFT_PREFIX) :]: v for k, v in state.items()}, metadata, path)
    if (config.get("r"), float(config.get("lora_alpha") or 0)) != (adapter.rank, adapter.alpha):
        raise AdapterError(
            f"adapter folder {path}: {PEFT_CONFIG_NAME} says r {config.get('r')}, lora_alpha "
            f"{config.get('lora_alpha')}; the weights say rank {adapter.rank}, alpha {adapter.alpha}"
        )
    return adapter


def _parse_ours(state: Mapping[str, torch.Tensor], metadata: Mapping[str, str], path: Path) -> AdapterFile:
    if metadata.get("format_version") != str(FORMAT_VERSION):
        raise AdapterError(
            f"adapter file {path}: format version {metadata.get('format_version')}, this library reads {FORMAT_VERSION}"
        )
    if metadata.get("renorm", RENORM) != RENORM:
        raise AdapterError(
            f"adapter file {path}: re-normalization {metadata.get('renorm')!r}, this library has {RENORM!r}"
        )
    try:
        alpha = float(metadata["alpha"])
    except (KeyError, ValueError) as exc:
        raise AdapterError(f"adapter file {path}: expected a numeric 'alpha' in the metadata, got {exc}") from exc
    try:
        user = json.loads(metadata.get("metadata", "{}"))
    except json.JSONDecodeError as exc:
        raise AdapterError(f"adapter file {path}: its 'metadata' entry is not valid JSON: {exc}") from exc
    blocks_path, lora = _group_lora(state, _OUR_KEY, path)
    adapter = AdapterFile(
        blocks_path, lora, alpha, metadata.get("base_model", ""), metadata.get("checkpoint_sha256", ""), user
    )
    if str(adapter.rank) != metadata.get("rank"):
        raise AdapterError(
            f"adapter file {path}: metadata says rank {metadata.get('rank')}, tensors have {adapter.rank}"
        )
    return adapter


def _parse_authors(state: Mapping[str, torch.Tensor], path: Path) -> AdapterFile:
    lora_keys = {k for k in state if _AUTHORS_KEY.fullmatch(k)}
    if not lora_keys:
        raise AdapterError(
            f"adapter file {path}: expected LoRA keys like "
            f"'<blocks>.<i>.attn.base_model.model.qkv.lora_A.default.weight' or our safetensors format, "
            f"found none among {len(state)} keys (e.g. {sorted(state)[:3]})"
        )
    blocks_path, lora = _group_lora({k: state[k] for k in lora_keys}, _AUTHORS_KEY, path)
    base = {
        k.replace(_WRAPPER, ".").replace(".base_layer.", "."): v
        for k, v in state.items()
        if k not in lora_keys and ".lora_" not in k
    }
    return AdapterFile(blocks_path, lora, AUTHORS_ALPHA, base_tensors=base)


def _group_lora(
    state: Mapping[str, torch.Tensor], pattern: re.Pattern[str], path: Path
) -> tuple[str, dict[int, dict[str, torch.Tensor]]]:
    """Group LoRA tensors by block; one blocks path, each block with both A and B of one rank."""
    lora: dict[int, dict[str, torch.Tensor]] = {}
    prefixes: set[str] = set()
    for key, tensor in state.items():
        m = pattern.fullmatch(key)
        if m is None:
            raise AdapterError(f"adapter file {path}: unexpected key {key!r}")
        prefixes.add(m["blocks"])
        lora.setdefault(int(m["i"]), {})[m["ab"]] = tensor
    if len(prefixes) != 1:
        raise AdapterError(f"adapter file {path}: expected LoRA tensors under one blocks path, got {sorted(prefixes)}")
    ranks = set()
    for i, pair in sorted(lora.items()):
        if set(pair) != {"A", "B"} or pair["A"].ndim != 2 or pair["B"].ndim != 2:
            raise AdapterError(f"adapter file {path}: block {i} needs a 2-D lora_A and lora_B, got {sorted(pair)}")
        ranks.update({pair["A"].shape[0], pair["B"].shape[1]})
    if len(ranks) != 1:
        raise AdapterError(f"adapter file {path}: expected one LoRA rank in every block, got ranks {sorted(ranks)}")
    return prefixes.pop(), lora


def check_compatible(model: ReconstructionModel, adapter: AdapterFile, path: str | Path) -> None:
    """Raise AdapterError unless `adapter` fits the model's encoder: same blocks path, every block, shapes."""
    name = model.name or type(model).__name__
    if adapter.blocks_path != model.encoder_blocks_path:
        raise AdapterError(
            f"adapter file {path} is for another model: its LoRA sits on '{adapter.blocks_path}.<i>.attn.qkv', "
            f"model {name} has its encoder blocks at '{model.encoder_blocks_path}'"
        )
    if adapter.base_model and model.name and adapter.base_model != model.name:
        raise AdapterError(f"adapter file {path} was trained on {adapter.base_model}, the model is {model.name}")
    blocks = model.encoder_blocks()
    expected = set(range(len(blocks)))
    if set(adapter.lora) != expected:
        missing, extra = sorted(expected - set(adapter.lora)), sorted(set(adapter.lora) - expected)
        raise AdapterError(
            f"adapter file {path} does not fit model {name} ({len(blocks)} encoder blocks): "
            f"missing blocks {missing}, blocks the model does not have {extra}"
        )
    dim = blocks[0].attn.qkv.in_features
    rank = adapter.rank
    for i, pair in sorted(adapter.lora.items()):
        if tuple(pair["A"].shape) != (rank, dim) or tuple(pair["B"].shape) != (3 * dim, rank):
            raise AdapterError(
                f"adapter file {path} does not fit model {name} (width {dim}): block {i} has lora_A "
                f"{tuple(pair['A'].shape)} and lora_B {tuple(pair['B'].shape)}, expected ({rank}, {dim}) and "
                f"({3 * dim}, {rank})"
            )


def _warn_on_base_difference(model: ReconstructionModel, base: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """Warn when base tensors stored with an adapter differ from the model's (largest difference)."""
    own = {k.replace(".base_layer.", "."): v for k, v in model.state_dict().items() if ".lora_" not in k}
    differing: list[tuple[float, str]] = []
    for key, tensor in base.items():
        mine = own.get(key)
        if mine is None or mine.is_meta:
            continue
        if mine.shape != tensor.shape:
            differing.append((float("inf"), key))
            continue
        diff = (mine.detach().double().cpu() - tensor.double()).abs().max().item() if tensor.numel() else 0.0
        if diff > 0:
            differing.append((diff, key))
    if differing:
        worst, key = max(differing)
        warnings.warn(
            f"adapter file {path}: {len(differing)} base tensors differ from the loaded model "
            f"(max abs difference {worst:.3g} in {key}); the adapter was trained on other base weights",
            UserWarning,
            stacklevel=3,
        )
