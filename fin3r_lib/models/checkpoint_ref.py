"""Which local file a checkpoint reference means, found without importing torch or any model code.

Accepted forms of a checkpoint reference:
- a local file: `.safetensors`, or a torch pickle (`.pt`, `.pth`, `.bin`) (read by
  `fin3r_lib.models.checkpoint`);
- a local Hugging Face folder (`config.json` + `model.safetensors`, or `model.pt`);
- a Hugging Face repo id (`facebook/VGGT-1B`): the cached copy, else fetched into the Hugging Face cache
  unless `HF_HUB_OFFLINE` is set (`fin3r_lib.hub`);
- "default": the variant's released repo and file.

Tools call `find_model_checkpoint` before they import the model code, so a missing or uncached file
fails in a fraction of a second, not after torch has loaded.
"""

from __future__ import annotations

from pathlib import Path

from fin3r_lib.errors import CheckpointError
from fin3r_lib.hub import is_repo_id, pass_file_hint, resolve_hub_file
from fin3r_lib.model_options import ModelOptions
from fin3r_lib.models.registry import ModelEntry, model_entry

FOLDER_FILES = ("model.safetensors", "model.pt", "pytorch_model.bin")
#: names listed at most in a message
MAX_LISTED = 8


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


def find_model_checkpoint(options: ModelOptions, tool: str = "python") -> Path | None:
    """The local checkpoint file `options` ask for (None for random weights), or their ModelLoadError.

    The same lookup (and the same error) as `fin3r_lib.models.loader.load_model`, for tools to fail
    on a missing or uncached file before they import the model code.
    """
    if options.random_weights:
        return None
    try:
        return resolve_checkpoint(options.checkpoint, model_entry(options.model), tool=tool)
    except Exception as exc:  # CheckpointError, UnknownModelError
        raise options.load_error(exc) from exc
