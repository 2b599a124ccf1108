"""A run's resume state on disk: named arrays in `state.npz`, the rest in `state.json`; never pickle.

Both files are written to temporary names and renamed, the JSON last, and the JSON records the
SHA-256 of the arrays file: a state that was cut short or mixed with another run's is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from fin3r_lib.errors import InputError

ARRAYS = "state.npz"
DOCUMENT = "state.json"
VERSION = 4  # 2: per-frame metric scales of the output folder; 3: the scale estimator; 4: frames without a sample


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_state(folder: str | Path, arrays: dict[str, np.ndarray], doc: dict) -> None:
    """Write `arrays` (no object arrays) and the JSON-serialisable `doc` into `folder`, atomically per file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (ARRAYS + ".tmp")
    with tmp.open("wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
    os.replace(tmp, folder / ARRAYS)
    full = {"version": VERSION, "arrays_sha256": _sha256(folder / ARRAYS), **doc}
    tmp = folder / (DOCUMENT + ".tmp")
    tmp.write_text(json.dumps(full, indent=1, allow_nan=False) + "\n")
    os.replace(tmp, folder / DOCUMENT)


def has_state(folder: str | Path) -> bool:
    """True when `folder` holds a saved state (its JSON document)."""
    return (Path(folder) / DOCUMENT).is_file()


def load_state(folder: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, doc) saved by `save_state`; InputError when missing, damaged or of another version."""
    folder = Path(folder)
    doc_path, arrays_path = folder / DOCUMENT, folder / ARRAYS
    if not doc_path.is_file() or not arrays_path.is_file():
        raise InputError(f"{folder}: expected a resume state ({DOCUMENT} and {ARRAYS}), found none")
    try:
        doc = json.loads(doc_path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{doc_path}: expected a JSON resume state, got unreadable content ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        got = doc.get("version") if isinstance(doc, dict) else type(doc).__name__
        raise InputError(f"{doc_path}: expected resume state version {VERSION}, got {got!r}")
    if doc.get("arrays_sha256") != _sha256(arrays_path):
        raise InputError(f"{arrays_path}: does not match {DOCUMENT} (written by another or an unfinished save)")
    try:
        with np.load(arrays_path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"{arrays_path}: expected numpy arrays without objects, got {exc}") from exc
    return arrays, doc


def clear_state(folder: str | Path) -> None:
    """Remove a saved state (a run that completed needs none)."""
    folder = Path(folder)
    for name in (DOCUMENT, ARRAYS):
        (folder / name).unlink(missing_ok=True)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
