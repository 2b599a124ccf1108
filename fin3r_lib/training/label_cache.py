"""The pseudo-label cache: teacher labels computed once and stored beside the dataset, one file per frame.

Layout of a cache folder (default `<dataset>/labels/<teacher>/`):
- `manifest.json`: format, version, the teacher's identity (name, variant, weights hash, settings),
  the label conversion and the resolution; a cache whose manifest differs from what is asked for is
  refused (never silently reused);
- `<camera>-<index>.safetensors`: the label of one frame: `depth` (H, W) float16 (normalized, 0 where
  invalid) and `mask` (H, W) uint8, metadata: the frame's stamp and size, scale and shift;
- `summary.json`: counts and the skipped frames with their reasons (written at the end of a run);
  a run split over N processes (`fin3r label` under torchrun) writes `summary.part-K-of-N.json` per
  process, which the first process merges into `summary.json` (with the per-process counts).

Every file is written to a temporary name and renamed, so an interrupted run leaves complete files
only, and the next run continues with the frames that are missing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save as save_safetensors
from tqdm import tqdm

from fin3r_lib.data.dataset import write_atomic
from fin3r_lib.data.frame import Frame, SkippedFrame
from fin3r_lib.errors import Fin3rError, InputError
from fin3r_lib.training.pseudo_label import CONVERSION, PseudoLabel, pseudo_label
from fin3r_lib.training.teachers.base import Teacher

FORMAT = "fin3r-labels"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SUMMARY = "summary.json"
#: labels are stored on each frame's own pixel grid
RESOLUTION = "frame"


class LabelCacheError(Fin3rError):
    """A label cache is stale, was made with another teacher or conversion, or a file in it is damaged."""


def frame_key(frame: Frame) -> str:
    """File stem of a frame's label: `<camera>-<index>` (camera name made file-safe)."""
    camera = re.sub(r"[^A-Za-z0-9_.]+", "_", frame.camera).strip("_") or "camera"
    return f"{camera}-{frame.index:08d}"


def _stamp(frame: Frame) -> str:
    return str(frame.stamp_ns) if frame.stamp_ns is not None else repr(float(frame.stamp))


@dataclass
class LabelRunSummary:
    """What one labelling run did: labelled now, found in the cache, skipped (with why)."""

    labelled: int = 0
    cached: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"labelled": self.labelled, "cached": self.cached, "skipped": self.skipped}


def _part_summary_name(part: int, parts: int) -> str:
    return f"summary.part-{part}-of-{parts}.json"


def _write_json(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(obj, indent=2) + "\n").encode())


def merge_part_summaries(root: str | Path, parts: int) -> dict[str, Any]:
    """Merge the `parts` processes' summaries of one split run into `summary.json` (their files removed).

    Returns what it wrote: the summed counts, every skipped frame, and `processes`, each part's counts.
    """
    root = Path(root)
    found = [root / _part_summary_name(k, parts) for k in range(parts)]
    missing = [p.name for p in found if not p.is_file()]
    if missing:
        raise LabelCacheError(f"label cache {root}: expected the summaries of all {parts} processes, missing {missing}")
    each = [json.loads(p.read_text()) for p in found]
    merged = {
        "labelled": sum(e["labelled"] for e in each),
        "cached": sum(e["cached"] for e in each),
        "skipped": [item for e in each for item in e["skipped"]],
        "processes": [{"labelled": e["labelled"], "cached": e["cached"], "skipped": len(e["skipped"])} for e in each],
    }
    _write_json(root / SUMMARY, merged)
    for path in found:
        path.unlink()
    return merged


class LabelCache:
    """One teacher's labels for one dataset; opening checks (or creates) the manifest."""

    def __init__(self, root: str | Path, teacher_identity: dict[str, Any], create: bool = True) -> None:
        self.root = Path(root)
        self.manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "teacher": teacher_identity,
            "conversion": CONVERSION,
            "resolution": RESOLUTION,
        }
        path = self.root / MANIFEST
        if path.is_file():
            try:
                found = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise LabelCacheError(f"label cache {self.root}: unreadable {MANIFEST}: {exc}") from exc
            if found != self.manifest:
                diff = [k for k in sorted(set(found) | set(self.manifest)) if found.get(k) != self.manifest.get(k)]
                detail = "; ".join(f"{k}: cache has {found.get(k)!r}, expected {self.manifest.get(k)!r}" for k in diff)
                raise LabelCacheError(
                    f"label cache {self.root} was made differently ({detail}); "
                    "label into another folder or delete this one"
                )
        elif create:
            self.root.mkdir(parents=True, exist_ok=True)
            write_atomic(path, (json.dumps(self.manifest, indent=2, sort_keys=True) + "\n").encode())
        else:
            raise LabelCacheError(f"no label cache at {self.root} (expected {MANIFEST}; run `fin3r label` first)")

    def path(self, frame: Frame) -> Path:
        """Where the label of `frame` lives."""
        return self.root / f"{frame_key(frame)}.safetensors"

    def write(self, frame: Frame, label: PseudoLabel) -> Path:
        """Store `label` for `frame` (atomically)."""
        h, w = frame.size
        if label.depth.shape != (h, w) or label.mask.shape != (h, w):
            raise InputError(f"label of {frame_key(frame)}: expected size {(h, w)}, got {label.depth.shape}")
        meta = {
            "stamp": _stamp(frame),
            "height": str(h),
            "width": str(w),
            "scale": repr(float(label.scale)),
            "shift": repr(float(label.shift)),
            "source": frame.source,
        }
        data = save_safetensors(
            {"depth": label.depth.astype(np.float16), "mask": label.mask.astype(np.uint8)}, metadata=meta
        )
        path = self.path(frame)
        write_atomic(path, data)
        return path

    def read(self, frame: Frame) -> PseudoLabel:
        """The cached label of `frame`; LabelCacheError when missing, damaged or made for another frame."""
        path = self.path(frame)
        if not path.is_file():
            raise LabelCacheError(f"label cache {self.root}: no label for {frame_key(frame)} (run `fin3r label`)")
        try:
            with safe_open(str(path), framework="np") as f:
                meta = f.metadata() or {}
                depth, mask = f.get_tensor("depth"), f.get_tensor("mask")
        except (SafetensorError, OSError, KeyError) as exc:
            raise LabelCacheError(f"label file {path} is damaged: {exc}") from exc
        h, w = frame.size
        expected = {"stamp": _stamp(frame), "height": str(h), "width": str(w)}
        stale = {k: meta.get(k) for k in expected if meta.get(k) != expected[k]}
        if stale or depth.shape != (h, w) or mask.shape != (h, w):
            raise LabelCacheError(
                f"label file {path} is stale: it was made for another frame "
                f"(file has {stale or {'shape': depth.shape}}, the frame has {expected})"
            )
        return PseudoLabel(depth.astype(np.float32), mask.astype(bool), float(meta["scale"]), float(meta["shift"]))

    def has(self, frame: Frame) -> bool:
        """True when a label file that matches `frame` is in the cache."""
        try:
            self.read(frame)
        except LabelCacheError:
            return False
        return True


def _batches(frames: Iterable[Frame | SkippedFrame], size: int) -> Iterator[list[Frame | SkippedFrame]]:
    batch: list[Frame | SkippedFrame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def label_frames(
    frames: Iterable[Frame | SkippedFrame],
    teacher: Teacher,
    cache: LabelCache,
    batch_size: int = 8,
    total: int | None = None,
    progress: bool = True,
    part: int = 0,
    parts: int = 1,
) -> LabelRunSummary:
    """Label every frame not yet in `cache` with `teacher`, in batches; writes `summary.json` at the end.

    A frame the teacher cannot label (no depth, no valid pixel) is skipped and reported with its
    reason, as is an item the source could not read (`SkippedFrame`); the others are still labelled.
    Frames already cached are not recomputed (resumable).
    `part` of `parts` (a process of a split run): only the source's items at positions i with
    i % parts == part are this call's; its summary goes to `summary.part-K-of-N.json` for
    `merge_part_summaries`.
    """
    if batch_size < 1:
        raise InputError(f"label batch size: expected >= 1, got {batch_size}")
    if parts < 1 or not 0 <= part < parts:
        raise InputError(f"label part: expected 0 <= part < parts, got part {part} of {parts}")
    summary = LabelRunSummary()
    if parts > 1:
        frames = (item for i, item in enumerate(frames) if i % parts == part)
        total = None if total is None else len(range(part, total, parts))
    bar = tqdm(total=total, desc=f"labels ({teacher.name})", unit="frame", disable=not progress)
    for batch in _batches(frames, batch_size):
        unread = [f for f in batch if isinstance(f, SkippedFrame)]
        summary.skipped.extend({"source": f.source, "reason": f.reason} for f in unread)
        readable = [f for f in batch if not isinstance(f, SkippedFrame)]
        todo = [f for f in readable if not cache.has(f)]
        summary.cached += len(readable) - len(todo)
        for frame, outcome in zip(todo, _label_batch(teacher, todo), strict=True):
            if isinstance(outcome, str):
                summary.skipped.append({"source": frame.source or frame_key(frame), "reason": outcome})
            else:
                cache.write(frame, outcome)
                summary.labelled += 1
        bar.update(len(batch))
    bar.close()
    _write_json(cache.root / (SUMMARY if parts == 1 else _part_summary_name(part, parts)), summary.to_json())
    return summary


def _label_batch(teacher: Teacher, frames: Sequence[Frame]) -> list[PseudoLabel | str]:
    """Labels of `frames`, a reason string in place of each one that failed; one teacher call when all work,
    else frame by frame so one bad frame does not cost its batch."""
    if not frames:
        return []
    try:
        outputs = teacher.label(frames)
    except InputError as exc:
        if len(frames) == 1:
            return [str(exc)]
        return [item for f in frames for item in _label_batch(teacher, [f])]
    results: list[PseudoLabel | str] = []
    for frame, out in zip(frames, outputs, strict=True):
        try:
            results.append(pseudo_label(out, frame.intrinsics))
        except InputError as exc:
            results.append(str(exc))
    return results


def open_cache(root: str | Path, teacher: str) -> LabelCache:
    """An existing cache of `teacher`'s labels (any settings; format and conversion must be current's)."""
    root = Path(root)
    try:
        found = json.loads((root / MANIFEST).read_text())
    except FileNotFoundError:
        raise LabelCacheError(f"no label cache at {root} (expected {MANIFEST}; run `fin3r label` first)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise LabelCacheError(f"label cache {root}: unreadable {MANIFEST}: {exc}") from exc
    identity = found.get("teacher") if isinstance(found, dict) else None
    name = identity.get("teacher") if isinstance(identity, dict) else None
    if name != teacher:
        raise LabelCacheError(f"label cache {root}: expected labels of teacher {teacher!r}, got {name!r}")
    return LabelCache(root, identity, create=False)
