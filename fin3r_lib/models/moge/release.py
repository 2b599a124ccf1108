"""MoGe's released `model.pt` files: variants, where their weights come from, and loading them strictly.

A release file is a torch pickle of {"model_config": dict, "model": state dict}; the config is the
constructor arguments of MoGe's model class (MoGe-1 when `encoder` is a backbone name, MoGe-2 when
it is a dict). It is read through `fin3r_lib.safe_load` (nothing in it runs), the model is built
from the file's own config and every name and shape must match.

Known variants carry their Hugging Face repo; the configs of `moge-vitl`, `moge-2-vitl` and
`moge-2-vitl-normal` are MoGe's published training configs (parameter counts 314.2M, 326.2M and
330.9M match the README's 314M, 326M, 331M) and serve for meta-device layout checks and random
weights; `-vitb-normal` / `-vits-normal` are built from their files' configs only. The `-tiny`
variants are ours (DINOv2 64-wide, 4 blocks) for tests.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fin3r_lib.errors import CheckpointError, InputError
from fin3r_lib.hub import is_repo_id, resolve_hub_file
from fin3r_lib.models.checkpoint import load_state_dict_exact
from fin3r_lib.models.moge.v1 import MoGeV1
from fin3r_lib.models.moge.v2 import MoGeV2
from fin3r_lib.safe_load import load_torch_file

FILENAME = "model.pt"

V1_VITL: dict[str, Any] = {
    "encoder": "dinov2_vitl14",
    "remap_output": "exp",
    "intermediate_layers": 4,
    "dim_upsample": [256, 128, 64],
    "dim_times_res_block_hidden": 2,
    "num_res_blocks": 2,
    "num_tokens_range": [1200, 2500],
    "last_conv_channels": 32,
    "last_conv_size": 1,
}


def _stack(dim_in: list[Any], dims: list[int], dim_out: list[Any], blocks: list[int]) -> dict[str, Any]:
    return {
        "dim_in": dim_in,
        "dim_out": dim_out,
        "dim_res_blocks": dims,
        "num_res_blocks": blocks,
        "res_block_in_norm": "none",
        "res_block_hidden_norm": "none",
        "resamplers": ["conv_transpose", "conv_transpose", "conv_transpose", "bilinear"],
    }


def v2_config(backbone: str, layers: list[int], width: int, dims: list[int], normal: bool) -> dict[str, Any]:
    """A MoGe-2 model config in the release's form (neck + heads at widths `dims`, feature width `width`)."""
    head = _stack(dims, dims, [None] * 4 + [3], [0, 1, 1, 1, 0])
    config: dict[str, Any] = {
        "encoder": {"backbone": backbone, "intermediate_layers": layers, "dim_out": width},
        "neck": _stack([width + 2, 2, 2, 2, 2], dims, None, [0, 2, 2, 2, 0]),
        "points_head": head,
        "mask_head": {**head, "dim_out": [None] * 4 + [1]},
        "scale_head": {"dims": [width, width, width, 1]},
        "remap_output": "exp",
        "num_tokens_range": [1200, 3600],
    }
    if normal:
        config["normal_head"] = copy.deepcopy(head)
    return config


V2_VITL_DIMS = [1024, 256, 128, 64, 32]


@dataclass(frozen=True)
class MoGeVariant:
    """A named MoGe model: Hugging Face repo of its `model.pt` (None: no release) and config (None: the file's)."""

    name: str
    repo: str | None
    config: dict[str, Any] | None


VARIANTS: dict[str, MoGeVariant] = {
    v.name: v
    for v in (
        MoGeVariant("moge-vitl", "Ruicheng/moge-vitl", V1_VITL),
        MoGeVariant(
            "moge-2-vitl",
            "Ruicheng/moge-2-vitl",
            v2_config("dinov2_vitl14", [5, 11, 17, 23], 1024, V2_VITL_DIMS, False),
        ),
        MoGeVariant(
            "moge-2-vitl-normal",
            "Ruicheng/moge-2-vitl-normal",
            v2_config("dinov2_vitl14", [5, 11, 17, 23], 1024, V2_VITL_DIMS, True),
        ),
        MoGeVariant("moge-2-vitb-normal", "Ruicheng/moge-2-vitb-normal", None),
        MoGeVariant("moge-2-vits-normal", "Ruicheng/moge-2-vits-normal", None),
        MoGeVariant(
            "moge-1-tiny",
            None,
            {**V1_VITL, "encoder": "dinov2_vitt14", "dim_proj": 32, "dim_upsample": [32, 32, 32], "num_res_blocks": 1},
        ),
        MoGeVariant("moge-2-tiny", None, v2_config("dinov2_vitt14", [1, 3], 64, [64, 32, 32, 32, 32], True)),
    )
}


def variant(name: str) -> MoGeVariant:
    """The variant called `name`; InputError lists the known ones."""
    if name not in VARIANTS:
        raise InputError(f"unknown MoGe variant {name!r}; expected one of: {', '.join(VARIANTS)}")
    return VARIANTS[name]


def build_moge(config: dict[str, Any]) -> MoGeV1 | MoGeV2:
    """Our MoGe-1 or MoGe-2 from a release `model_config` (v2 when its `encoder` is a dict)."""
    config = copy.deepcopy(config)
    try:
        return MoGeV2(**config) if isinstance(config.get("encoder"), dict) else MoGeV1(**config)
    except TypeError as exc:
        raise InputError(f"MoGe model config {sorted(config)}: {exc}") from exc


def resolve_weights(ref: str | Path, repo: str | None = None) -> Path:
    """Local `model.pt` of a file, a folder holding one, or a Hugging Face repo id (the local cache
    first, then the Hub unless HF_HUB_OFFLINE; `fin3r_lib.hub`); CheckpointError saying what to do."""
    path = Path(ref).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        if (path / FILENAME).is_file():
            return path / FILENAME
        raise CheckpointError(f"MoGe weights folder {path}: expected {FILENAME} in it")
    repo_id = str(ref)
    if not is_repo_id(repo_id):
        raise CheckpointError(
            f"MoGe weights {repo_id!r}: expected a {FILENAME} file, a folder, or a repo id like {repo}"
        )
    return resolve_hub_file(repo_id, FILENAME, option="weights")


def read_release(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(model_config, state dict) of a MoGe `model.pt`, read without running anything in it."""
    obj = load_torch_file(path, "MoGe checkpoint")
    if (
        not isinstance(obj, dict)
        or not isinstance(obj.get("model_config"), dict)
        or not isinstance(obj.get("model"), dict)
    ):
        found = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"MoGe checkpoint {path}: expected a dict with 'model_config' and 'model', got {found}")
    return obj["model_config"], obj["model"]


def load_release(path: str | Path) -> tuple[MoGeV1 | MoGeV2, dict[str, Any]]:
    """Our model with a release file's weights loaded strictly (built on the meta device, then assigned)."""
    config, state = read_release(path)
    with torch.device("meta"):
        model = build_moge(config)
    load_state_dict_exact(model, state, path)
    return model.eval(), config


#: mask-score bias given to random models so that their pixels are valid (tests, demos)
RANDOM_MASK_BIAS = 2.0


def seeded_model(config: dict[str, Any], seed: int) -> MoGeV1 | MoGeV2:
    """Our model at random weights drawn from torch's generator seeded with `seed` (global state kept),
    its final mask conv biased by RANDOM_MASK_BIAS so that the mask is not empty."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_moge(config).eval()
    last = model.head.output_block[1][-1] if isinstance(model, MoGeV1) else model.mask_head.output_blocks[-1]
    with torch.no_grad():
        last.bias += RANDOM_MASK_BIAS
    return model
