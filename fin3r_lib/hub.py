"""Files from the Hugging Face Hub, local cache first, with start-up errors in the caller's syntax.

`resolve_hub_file` looks in the huggingface_hub cache (`HF_HUB_CACHE`, default
`~/.cache/huggingface/hub`) before anything else. With `HF_HUB_OFFLINE=1` it never opens a socket: a
file that is not cached fails at once with one message that says where it was looked for, the
`hf download` command that fetches it, and how to pass the local file to the tool in use
(`--checkpoint PATH` for the `fin3r` CLI, `checkpoint:=PATH` for the node and its launch file).
Online, a missing file is downloaded into that cache (huggingface_hub's progress bar).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from fin3r_lib.errors import CheckpointError

#: how each tool takes a local file for an option (`{option}`: checkpoint or adapter)
TOOL_SYNTAX: dict[str, str] = {
    "cli": "--{option} {path}",
    "ros": "{option}:={path}",
    "python": "{option}={path!r}",
}


class HubFileMissing(CheckpointError):
    """A Hub file is neither in the local cache nor downloadable (offline or unreachable)."""


def is_repo_id(ref: str) -> bool:
    """True for `owner/name` (one slash, no path-like start, no file suffix), e.g. `facebook/VGGT-1B`."""
    return ref.count("/") == 1 and not ref.startswith((".", "/", "~")) and not Path(ref).suffix


def hub_cli_name() -> str:
    """`hf` when the installed huggingface_hub ships that command (1.0 and later), else `huggingface-cli`."""
    try:
        scripts = metadata.distribution("huggingface_hub").entry_points
    except metadata.PackageNotFoundError:
        return "hf"
    names = {ep.name for ep in scripts if ep.group == "console_scripts"}
    return "hf" if "hf" in names or "huggingface-cli" not in names else "huggingface-cli"


def pass_file_hint(option: str, filename: str, tool: str) -> str:
    """How to give `tool` a local copy of `filename` for `option`, e.g. `--checkpoint /path/to/model.pt`."""
    if tool not in TOOL_SYNTAX:
        raise ValueError(f"tool: expected one of {sorted(TOOL_SYNTAX)}, got {tool!r}")
    return TOOL_SYNTAX[tool].format(option=option, path=f"/path/to/{filename}")


def missing_file_message(
    repo_id: str, filenames: Sequence[str], *, option: str, tool: str, cache: str, reason: str
) -> str:
    """The one-line error for Hub files not in `cache` (see the module docstring)."""
    files = " ".join(filenames)
    target = filenames[0] if len(filenames) == 1 else Path(repo_id).name
    return (
        f"{option} {repo_id!r}: {files} not in the Hugging Face cache at {cache} and {reason}. "
        f"Download it where the Hub is reachable with `{hub_cli_name()} download {repo_id} {files}` "
        f"(or copy that cache folder here), or pass a local copy: {pass_file_hint(option, target, tool)}"
    )


def resolve_hub_file(repo_id: str, filename: str, *, tool: str = "python", option: str = "checkpoint") -> Path:
    """Local path of `filename` in Hub repo `repo_id`: the cached copy, else a download unless offline.

    Raises HubFileMissing (one message, see the module docstring) when the file is not cached and
    `HF_HUB_OFFLINE` is set or the Hub cannot be reached.
    """
    return resolve_hub_folder(repo_id, [filename], tool=tool, option=option) / filename


def resolve_hub_folder(
    repo_id: str, filenames: Sequence[str], *, tool: str = "python", option: str = "adapter"
) -> Path:
    """The local snapshot folder holding every one of `filenames` of `repo_id` (cache first, as above)."""
    from huggingface_hub import constants

    pass_file_hint(option, filenames[0], tool)  # reject an unknown tool before any look-up
    found = [_cached_or_downloaded(repo_id, name) for name in filenames]
    failures = [f for f in found if isinstance(f, _Failure)]
    if failures:
        raise HubFileMissing(
            missing_file_message(
                repo_id, filenames, option=option, tool=tool, cache=constants.HF_HUB_CACHE, reason=failures[0].reason
            )
        ) from failures[0].exc
    folders = {p.parent for p in found}
    if len(folders) != 1:
        raise HubFileMissing(f"{option} {repo_id!r}: {', '.join(filenames)} lie in different cache snapshots {folders}")
    return folders.pop()


@dataclass(frozen=True)
class _Failure:
    reason: str
    exc: Exception | None = None


def _cached_or_downloaded(repo_id: str, filename: str) -> Path | _Failure:
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, filename)
    if isinstance(cached, str):
        return Path(cached)
    if constants.is_offline_mode():
        return _Failure("HF_HUB_OFFLINE is set (nothing is downloaded)")
    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename))
    except Exception as exc:  # connection errors, 401/404 from the Hub, ...
        first_line = (str(exc).splitlines() or [""])[0][:200]
        return _Failure(f"it could not be downloaded ({type(exc).__name__}: {first_line})", exc)
