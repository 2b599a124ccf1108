"""Training data read from disk as a config names it: frames through the dataset readers, labels from the cache.

One reader serves `fin3r label` and `fin3r train` (`iter_source`), so a frame gets the same cache key
in both: folders in an evaluation layout (7-Scenes, TUM RGB-D, rgb/ + depth/, a `fin3r extract`
dataset) come through `fin3r_lib.datasets` with their depth, intrinsics and poses; other inputs
(image folders, videos, bags) through `fin3r_lib.data.sources.open_frames`. A frame that cannot be
used (no label in the cache, a replay frame without depth, intrinsics or pose, an undecodable file)
is skipped and counted with its reason; a source left without any usable frame is an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fin3r_lib.data.frame import Frame, SkippedFrame
from fin3r_lib.data.sources import frame_count, open_frames
from fin3r_lib.datasets import Sequence, open_sequence, sequence_kind
from fin3r_lib.errors import InputError
from fin3r_lib.training.config import SOURCE_KINDS, ConfigError, SourceConfig, TrainConfig
from fin3r_lib.training.label_cache import LabelCacheError, open_cache
from fin3r_lib.training.trainer import Labelled


def source_kind(path: Path, kind: str = "auto") -> str:
    """The reader for `path`: `kind` itself, or for `auto` the evaluation layout it has, else `other`."""
    if kind not in SOURCE_KINDS:
        raise InputError(f"source kind: expected one of {', '.join(SOURCE_KINDS)}, got {kind!r}")
    if kind != "auto":
        return kind
    if path.is_dir():
        try:
            return sequence_kind(path)
        except InputError:
            pass
    return "other"


def iter_source(
    path: str | Path, kind: str = "auto", pattern: str | None = None
) -> tuple[Iterator[Frame | SkippedFrame], int | None]:
    """The frames of a source, in order, and their number when known without reading them."""
    path = Path(path)
    kind = source_kind(path, kind)
    if kind == "other":
        return open_frames(path, pattern=pattern), frame_count(path, pattern)
    sequence = open_sequence(path, kind)
    total = len(sequence.frames) + len(sequence.skipped) if hasattr(sequence.frames, "__len__") else None
    return _with_skipped(sequence), total


def _with_skipped(sequence: Sequence) -> Iterator[Frame | SkippedFrame]:
    """The items a sequence reader set aside (as SkippedFrame), then its frames."""
    for item in sequence.skipped:
        yield SkippedFrame(item["source"], item["reason"])
    yield from sequence


@dataclass
class TrainingSources:
    """What `build_sources` read: labelled single-view frames and replay frames per source, the
    held-out validation frames, and every skipped item with its reason."""

    single_view: list[list[Labelled]] = field(default_factory=list)
    replay: list[list[Frame]] = field(default_factory=list)
    validation: list[Labelled] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def _frames(src: SourceConfig, where: str, skipped: list[dict[str, str]]) -> list[Frame]:
    """The `first`/`count` slice of a source's usable frames (skipped items recorded)."""
    path = Path(src.path)
    if not path.exists():
        raise ConfigError(f"{where}.path: expected an existing dataset folder or file, {path} does not exist")
    items, _ = iter_source(path, src.kind)
    frames = []
    for item in items:
        if isinstance(item, SkippedFrame):
            skipped.append({"source": item.source, "reason": item.reason})
        else:
            frames.append(item)
    end = src.first + src.count if src.count else None
    chosen = frames[src.first : end]
    if not chosen:
        raise ConfigError(f"{where}: expected frames in {path} from index {src.first}, got none of {len(frames)}")
    return chosen


def labels_folder(src: SourceConfig, teacher: str) -> Path:
    """A single-view source's label cache: `labels`, or `<path>/labels/<teacher>` (`fin3r label`'s default)."""
    return Path(src.labels) if src.labels else Path(src.path) / "labels" / teacher


def _labelled(src: SourceConfig, where: str, teacher: str, skipped: list[dict[str, str]]) -> list[Labelled]:
    cache = open_cache(labels_folder(src, teacher), teacher)
    out = []
    for frame in _frames(src, where, skipped):
        try:
            out.append((frame, cache.read(frame)))
        except LabelCacheError as exc:
            skipped.append({"source": frame.source or str(frame.index), "reason": str(exc)})
    if not out:
        raise ConfigError(f"{where}: no frame of {src.path} has a usable label in {cache.root} (run `fin3r label`)")
    return out


def _replay(src: SourceConfig, where: str, skipped: list[dict[str, str]]) -> list[Frame]:
    out = []
    for frame in _frames(src, where, skipped):
        missing = [n for n in ("depth", "intrinsics", "cam_to_world") if getattr(frame, n) is None]
        if missing:
            skipped.append({"source": frame.source or str(frame.index), "reason": f"replay frame without {missing}"})
        else:
            out.append(frame)
    if len(out) < src.views:
        raise ConfigError(
            f"{where}: expected at least {src.views} frames with depth, intrinsics and pose, got {len(out)}"
        )
    return out


def build_sources(cfg: TrainConfig) -> TrainingSources:
    """Read every source of `cfg`; the last `val_frames` of the first single-view source are held out."""
    result = TrainingSources()
    for i, src in enumerate(cfg.single_view):
        result.single_view.append(_labelled(src, f"single_view.{i}", cfg.teacher, result.skipped))
    for i, src in enumerate(cfg.replay):
        result.replay.append(_replay(src, f"replay.{i}", result.skipped))
    if cfg.val_frames:
        if not result.single_view or len(result.single_view[0]) <= cfg.val_frames:
            have = len(result.single_view[0]) if result.single_view else 0
            raise ConfigError(
                f"val_frames: expected fewer than the first single-view source's {have} frames, got {cfg.val_frames}"
            )
        result.validation = result.single_view[0][-cfg.val_frames :]
        result.single_view[0] = result.single_view[0][: -cfg.val_frames]
    return result
