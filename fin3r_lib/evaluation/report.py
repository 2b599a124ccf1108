"""Evaluation reports: `results.json` (every metric, config, hashes, dataset, versions) and a Markdown table.

With several runs (base and adapters, `--compare`) the table has one column per run and, for every
run after the first, a column of its difference to the first.
"""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path

import numpy as np

PACKAGES = ("fin3r_ros", "torch", "numpy", "evo", "scipy", "open3d-cpu", "open3d")


def file_sha256(path: str | Path | None) -> str | None:
    """SHA-256 of a local file (None when `path` is not a local file: a repo id, `default`, `none`)."""
    if not path or not Path(path).is_file():
        return None
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def versions() -> dict[str, str]:
    """Versions of Python and of the packages the numbers depend on (those installed)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def flatten(results: dict, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of nested results as {"a.b.c": value}; lists (per-frame rows) are left out."""
    out: dict[str, float] = {}
    for key, value in results.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= flatten(value, f"{name}.")
        elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def markdown_table(runs: dict[str, dict]) -> str:
    """One row per metric, one column per run, then `<run> - <first>` difference columns."""
    labels = list(runs)
    flat = {label: flatten(r) for label, r in runs.items()}
    keys = list(dict.fromkeys(k for label in labels for k in flat[label]))
    header = ["metric", *labels, *[f"{label} - {labels[0]}" for label in labels[1:]]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key in keys:
        values = [flat[label].get(key) for label in labels]
        base = values[0]
        diffs = [None if v is None or base is None else v - base for v in values[1:]]
        lines.append("| " + " | ".join([key, *map(_cell, values), *map(_cell, diffs)]) + " |")
    return "\n".join(lines) + "\n"


def _json_default(value: object) -> object:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def write_report(out: Path, document: dict) -> tuple[Path, Path]:
    """Write `results.json` (the whole document) and `results.md` (the table of `document["runs"]`)."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "results.json", out / "results.md"
    json_path.write_text(json.dumps(document, indent=1, default=_json_default) + "\n")
    md_path.write_text(f"# Evaluation of {document['dataset']['path']}\n\n" + markdown_table(document["runs"]))
    return json_path, md_path
