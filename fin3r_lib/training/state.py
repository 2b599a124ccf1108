"""Resume checkpoints: everything needed to continue a run bit-exactly, never a pickle.

A checkpoint is a folder `step-<N>/` under the run's `checkpoints/` with
- `tensors.safetensors`: the trainable tensors (`param.<name>`), the optimizer's per-tensor state
  (`optim.<i>.<key>`, i = the parameter's position) and the torch / CUDA RNG states;
- `state.json`: step, optimizer hyper-parameters, python and numpy RNG states, the sampler position
  (= the step: the sampler is a pure function of it), the config, best validation so far.
It is written as `.step-<N>.tmp/` and renamed when complete, so a process killed while writing leaves
the previous checkpoints untouched and loadable; only the last K are kept. The learning rate is a
function of the step (`schedule.learning_rate`), so there is no scheduler state to save; training
runs in bf16 autocast or fp32, so there is no loss-scaler state either.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from fin3r_lib.errors import CheckpointError

TENSORS = "tensors.safetensors"
STATE = "state.json"
_STEP_DIR = re.compile(r"step-(\d{8})")


@dataclass
class TrainState:
    """What a checkpoint restores."""

    step: int
    params: dict[str, torch.Tensor]
    optimizer: dict[str, Any]  # torch optimizer state_dict
    rng: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensor part, json part) of the python, numpy, torch and CUDA generators' states."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["rng.numpy.keys"] = torch.from_numpy(np.asarray(keys, np.int64))
    version, py_state, py_gauss = random.getstate()
    meta = {"numpy": [kind, int(pos), int(has_gauss), float(gauss)], "python": [version, list(py_state), py_gauss]}
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Restore the generators saved by `rng_state`."""
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    kind, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((kind, tensors["rng.numpy.keys"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, py_state, py_gauss = meta["python"]
    random.setstate((version, tuple(py_state), py_gauss))


def save_checkpoint(
    folder: Path,
    step: int,
    params: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    extra: dict[str, Any],
    keep: int,
) -> Path:
    """Write checkpoint `step` under `folder` atomically, then drop all but the newest `keep`."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step-{step:08d}"
    tmp = folder / f".step-{step:08d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    tensors = {f"param.{n}": p.detach().to("cpu").contiguous().clone() for n, p in params.items()}
    opt = optimizer.state_dict()
    for i, state in opt["state"].items():
        for key, value in state.items():
            if not torch.is_tensor(value):
                raise CheckpointError(f"optimizer state {i}.{key}: expected a tensor, got {type(value).__name__}")
            tensors[f"optim.{i}.{key}"] = value.detach().to("cpu").contiguous().clone()
    rng_tensors, rng_meta = rng_state()
    tensors.update(rng_tensors)
    save_file(tensors, str(tmp / TENSORS))
    state = {"step": step, "param_groups": opt["param_groups"], "rng": rng_meta, "extra": extra}
    with (tmp / STATE).open("w") as f:
        json.dump(state, f)
        f.flush()
        os.fsync(f.fileno())
    with (tmp / TENSORS).open("rb") as f:
        os.fsync(f.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(folder)[:-keep]:
        shutil.rmtree(old)
    return final


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoint folders under `folder`, oldest first (temporary folders are ignored)."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and _STEP_DIR.fullmatch(p.name)]
    return sorted(found, key=lambda p: int(_STEP_DIR.fullmatch(p.name).group(1)))


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (CPU); CheckpointError when unreadable."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except Exception as exc:
        raise CheckpointError(f"cannot read resume checkpoint {path}: {type(exc).__name__}: {exc}") from exc


def load_checkpoint(path: Path) -> TrainState:
    """Read one checkpoint folder (see the module docstring)."""
    try:
        state = json.loads((path / STATE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read resume checkpoint {path / STATE}: {exc}") from exc
    tensors = read_tensors(path / TENSORS)
    params = {k[len("param.") :]: v for k, v in tensors.items() if k.startswith("param.")}
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, index, key = k.split(".", 2)
            opt_state.setdefault(int(index), {})[key] = v
    optimizer = {"state": opt_state, "param_groups": state["param_groups"]}
    rng = {"tensors": {k: v for k, v in tensors.items() if k.startswith("rng.")}, "meta": state["rng"]}
    return TrainState(int(state["step"]), params, optimizer, rng, state.get("extra", {}))


def latest_checkpoint(folder: Path) -> TrainState | None:
    """The newest complete checkpoint under `folder`, or None when there is none."""
    found = list_checkpoints(folder)
    return load_checkpoint(found[-1]) if found else None
