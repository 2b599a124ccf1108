"""Reading checkpoint, adapter and resume files without ever running code stored in them.

Every torch pickle the project reads goes through `load_torch_file`, every safetensors file through
`read_safetensors`. What a torch pickle may contain:

- tensors and plain data: what `torch.load(weights_only=True)` accepts by default;
- the exact (module, name) pairs of `INERT_CONSTRUCTORS`, resolved to the real objects: data
  constructors that run no user code (`argparse.Namespace` of the DUSt3R-family releases, the
  builtin containers and `typing.Any` that an omegaconf config pickles);
- any other class or function is never imported nor called: it is replaced by an `InertObject`
  that only keeps the pickled arguments and state as data. The omegaconf classes of the CUT3R
  release's `args` (`KNOWN_FOREIGN`) are replaced quietly; any other name is reported once per file
  with an `UnsafeContentWarning` naming the file and the replaced globals;
- globals of `os`, `posix`, `nt` and `sys` are refused by torch itself, and a pickle that calls a
  replaced object (a `getattr(builtins, "exec")` chain) cannot be rebuilt: both are a CheckpointError
  naming the file and the global.

The mechanism is torch's own (`torch.serialization.get_unsafe_globals_in_checkpoint` to list the
globals without unpickling, `torch.serialization.safe_globals` to map them); no hand-written
unpickler. Damaged files give one CheckpointError: not a torch / safetensors file, truncated at byte
N, or saved with torch's legacy (pre-1.6) format with objects that need re-saving.
"""

from __future__ import annotations

import argparse
import collections
import json
import pickle
import struct
import threading
import typing
import warnings
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import torch

from fin3r_lib.errors import CheckpointError

#: globals resolved to the real objects: data constructors that run no code from the file
INERT_CONSTRUCTORS: dict[str, Any] = {
    "argparse.Namespace": argparse.Namespace,  # DUSt3R / MASt3R releases: training args
    "builtins.dict": dict,  # omegaconf metadata: ref_type / object_type
    "builtins.list": list,
    "builtins.int": int,
    "builtins.float": float,
    "builtins.str": str,
    "builtins.bool": bool,
    "builtins.tuple": tuple,
    "collections.defaultdict": collections.defaultdict,  # omegaconf ContainerMetadata.resolver_cache
    "typing.Any": typing.Any,  # omegaconf key / element types
}

#: foreign classes of known releases, replaced by InertObject without a warning
#: (CUT3R: `args` is an omegaconf 2.x DictConfig; omegaconf is never imported)
KNOWN_FOREIGN: frozenset[str] = frozenset(
    {
        "omegaconf.dictconfig.DictConfig",
        "omegaconf.listconfig.ListConfig",
        "omegaconf.base.ContainerMetadata",
        "omegaconf.base.Metadata",
        *(
            f"omegaconf.nodes.{node}"
            for node in (
                "AnyNode",
                "StringNode",
                "IntegerNode",
                "FloatNode",
                "BooleanNode",
                "EnumNode",
                "PathNode",
                "BytesNode",
            )
        ),
    }
)

ZIP_MAGIC = b"PK\x03\x04"
#: torch's legacy (pre-1.6) format starts with a pickled magic number (protocol 2, LONG1 of 10 bytes)
LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
RESAVE_HINT = (
    "re-save it with torch >= 1.6 where you trust it: torch.save(torch.load(OLD, weights_only=False)['model'], NEW)"
)

_WEIGHTS_ONLY_REASON = "WeightsUnpickler error:"
_TORCH_BOILERPLATE = (
    "Weights only load failed",
    "Check the documentation of torch.load",
    "Please file an issue",
    "(1) ",
    "(2) ",
)
_safe_globals_lock = threading.Lock()  # torch's safe_globals context is process-wide


class UnsafeContentWarning(UserWarning):
    """A file pickled classes or functions that were replaced by InertObject instead of being loaded."""


class InertObject:
    """Stands in for a pickled global that is never imported or called; keeps its pickled data only.

    `global_name` is the replaced `module.name`; `args` the constructor arguments and `state` the
    state the pickle gave it (both plain data or further InertObjects).
    """

    global_name: ClassVar[str] = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> InertObject:
        obj = object.__new__(cls)
        obj.args = args
        obj.state = None
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Nothing runs: the arguments are kept by `__new__`."""

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<inert {self.global_name}>"


def _inert_class(name: str) -> type[InertObject]:
    return type(f"Inert[{name}]", (InertObject,), {"global_name": name, "__module__": __name__})


def load_torch_file(path: str | Path, what: str = "checkpoint") -> Any:
    """Load a torch pickle on the CPU without running code from it (see the module docstring).

    `what` names the file's role in errors ("checkpoint", "adapter file", "resume file").
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} file not found: {path}")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(len(LEGACY_MAGIC))
    if head.startswith(ZIP_MAGIC):
        if not zipfile.is_zipfile(path):
            raise CheckpointError(
                f"{what} {path} is truncated at byte {size}: the torch zip archive has no directory at its end "
                "(incomplete download or copy?)"
            )
        return _load_zip(path, what)
    if head == LEGACY_MAGIC:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise CheckpointError(
                f"{what} {path} was saved with torch's legacy (pre-1.6) format and pickles objects other than "
                f"tensors ({_first_line(exc)}); {RESAVE_HINT}"
            ) from exc
        except Exception as exc:
            raise CheckpointError(f"cannot read {what} {path} (legacy torch format): {_describe(exc)}") from exc
    raise CheckpointError(
        f"{what} {path} is not a torch file: expected a zip archive written by torch.save (starts with "
        f"{ZIP_MAGIC!r}) or torch's legacy format, found {head[:8]!r} ({size} bytes)"
    )


def _load_zip(path: Path, what: str) -> Any:
    try:
        unsafe = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception as exc:  # torchscript archive, damaged pickle record, ...
        raise CheckpointError(f"cannot read {what} {path}: {_describe(exc)}") from exc
    mapping = [(INERT_CONSTRUCTORS[n] if n in INERT_CONSTRUCTORS else _inert_class(n), n) for n in unsafe]
    replaced = [n for n in unsafe if n not in INERT_CONSTRUCTORS and n not in KNOWN_FOREIGN]
    try:
        with _safe_globals_lock, torch.serialization.safe_globals(mapping):
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{what} {path} is refused: its pickle would run code, not just rebuild data ({_first_line(exc)})"
        ) from exc
    except Exception as exc:
        raise CheckpointError(f"cannot read {what} {path}: {_describe(exc)}") from exc
    if replaced:
        warnings.warn(
            f"{what} {path}: pickled {', '.join(replaced)}, which are not known data types; loaded as inert "
            "placeholders (never imported or called), only its tensors are used",
            UnsafeContentWarning,
            stacklevel=3,
        )
    return obj


def read_safetensors(path: str | Path, what: str = "checkpoint") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors (on the CPU) and metadata of a safetensors file, after checking its framing."""
    from safetensors import safe_open

    path = Path(path)
    check_safetensors(path, what)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})  # noqa: SIM118
    except Exception as exc:
        raise CheckpointError(f"cannot read {what} {path}: {_describe(exc)}") from exc


def check_safetensors(path: str | Path, what: str = "checkpoint") -> None:
    """Raise CheckpointError unless `path` is a complete safetensors file (header length, JSON, data size)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} file not found: {path}")
    size = path.stat().st_size
    with path.open("rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise CheckpointError(f"{what} {path} is not a safetensors file: {size} bytes, shorter than its header")
        (header_len,) = struct.unpack("<Q", prefix)
        first = f.read(1)
        if first != b"{":
            raise CheckpointError(
                f"{what} {path} is not a safetensors file: expected a JSON header after the 8-byte length, "
                f"found {prefix + first!r}"
            )
        if 8 + header_len > size:
            raise CheckpointError(
                f"{what} {path} is truncated at byte {size}: its header alone needs {8 + header_len} bytes"
            )
        try:
            header = json.loads(first + f.read(header_len - 1))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{what} {path} is not a safetensors file: its header is not JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{what} {path} is not a safetensors file: its header is not a JSON object")
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    needed = 8 + header_len + max(ends, default=0)
    if needed > size:
        raise CheckpointError(f"{what} {path} is truncated at byte {size}: its header describes {needed} bytes")


def _first_line(exc: BaseException) -> str:
    """The line of an exception that says why: torch's weights-only reason when there is one."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reasons = [
        line.removeprefix(_WEIGHTS_ONLY_REASON).strip() for line in lines if not line.startswith(_TORCH_BOILERPLATE)
    ]
    return (reasons or lines or [type(exc).__name__])[0]


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_first_line(exc)}"
