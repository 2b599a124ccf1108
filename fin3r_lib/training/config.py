"""The training configuration: one YAML file (read with `yaml.safe_load`) plus `key=value` overrides.

Keys are the fields of `TrainConfig` (flat) and of `SourceConfig` inside `single_view` / `replay`
(lists of sources; override as `single_view.0.path=...`). Every error names the key at fault.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fin3r_lib.datasets import SEQUENCE_KINDS
from fin3r_lib.errors import InputError
from fin3r_lib.model_options import ModelOptions

#: the largest seed `seed_everything` takes (numpy.random.seed is 32-bit)
MAX_TRAIN_SEED = 2**32 - 1

#: a dataset path a recipe leaves to the user (`<SA1B_DIR>`): refused until set
PLACEHOLDER = re.compile(r"<[A-Z0-9_]+>")
#: `kind` of a source: an evaluation layout, or `other` (image folder, video, bag: `open_frames`)
SOURCE_KINDS = ("auto", *SEQUENCE_KINDS, "other")


class ConfigError(InputError):
    """A training configuration key is unknown, missing, or has a value of the wrong type or range."""


@dataclass
class SourceConfig:
    """One data source: a frame dataset / 7-Scenes / TUM folder (`kind`: see SOURCE_KINDS; auto detects).

    Single-view sources need labels (`labels`: the cache folder, default `<path>/labels/<teacher>`);
    replay sources need ground-truth depth, intrinsics and poses, and are cut into windows of `views`
    frames taken every `stride` frames. `weight`: relative sampling weight among sources of its kind.
    `first`/`count`: the slice of the source's frames used (count 0: all).
    """

    path: str = ""
    kind: str = "auto"
    weight: float = 1.0
    labels: str = ""
    views: int = 4
    stride: int = 1
    first: int = 0
    count: int = 0


@dataclass
class TrainConfig:
    """Everything a training run depends on (see `training/configs/*.yaml` for commented recipes)."""

    # student
    model: str = "vggt-tiny"
    checkpoint: str = "default"  # "default" (released weights), a file / repo, or "none" (random: tests)
    trainable: str = "adapter"  # adapter: LoRA tensors only; encoder: the encoder blocks (ablation)
    rank: int = 8
    alpha: float = 8.0
    # data
    teacher: str = "sensor"
    single_view: list[SourceConfig] = field(default_factory=list)
    replay: list[SourceConfig] = field(default_factory=list)
    replay_fraction: float = 0.1  # share of micro-batches drawn from replay sources (paper: ~10%)
    batch_size: int = 4  # single-view images per micro-batch
    replay_batch_size: int = 1  # multi-view samples per micro-batch
    accumulation: int = 1
    augment: bool = False  # photometric: brightness and contrast jitter
    val_frames: int = 0  # last frames of the first single-view source held out for validation
    # losses
    lam: float = 0.2  # lambda of the log-confidence term (unpublished; DUSt3R/CUT3R/VGGT use 0.2)
    gradient_weight: float = 0.0  # weight of the optional depth-gradient term
    replay_weight: float = 1.0
    flip_labels: bool = False  # deliberately broken (labels mirrored): only for the trainer's own tests
    # optimisation
    steps: int = 1000
    lr: float = 1e-4
    min_lr: float = 1e-6
    warmup_steps: int = 50
    weight_decay: float = 0.05
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0: off
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU; or fp32 / bf16
    gradient_checkpointing: bool = False
    device: str = "auto"
    seed: int = 0
    # output
    out: str = "runs/fin3r"
    log_every: int = 10
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    val_every: int = 0  # 0: validate only at the end (when val_frames > 0)
    tensorboard: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Range checks; ConfigError names the key."""
        choices = {"trainable": ("adapter", "encoder"), "precision": ("auto", "fp32", "bf16")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key}: expected one of {', '.join(allowed)}, got {getattr(self, key)!r}")
        positive = ("rank", "alpha", "batch_size", "replay_batch_size", "accumulation", "steps", "lr", "log_every")
        for key in positive:
            if not getattr(self, key) > 0:
                raise ConfigError(f"{key}: expected a positive value, got {getattr(self, key)!r}")
        nonneg = ("min_lr", "warmup_steps", "weight_decay", "grad_clip", "lam", "gradient_weight", "val_frames")
        for key in (*nonneg, "replay_weight", "checkpoint_every", "val_every"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key}: expected a value >= 0, got {getattr(self, key)!r}")
        if not 0 <= self.seed <= MAX_TRAIN_SEED:
            raise ConfigError(f"seed: expected an integer from 0 to {MAX_TRAIN_SEED} (numpy's seed), got {self.seed!r}")
        if self.keep_checkpoints < 1:
            raise ConfigError(f"keep_checkpoints: expected >= 1, got {self.keep_checkpoints}")
        if not 0.0 <= self.replay_fraction <= 1.0:
            raise ConfigError(f"replay_fraction: expected a value in [0, 1], got {self.replay_fraction}")
        if self.min_lr > self.lr:
            raise ConfigError(f"min_lr: expected <= lr ({self.lr}), got {self.min_lr}")
        for kind in ("single_view", "replay"):
            for i, src in enumerate(getattr(self, kind)):
                where = f"{kind}.{i}"
                if not src.path:
                    raise ConfigError(f"{where}.path: required")
                if not src.weight > 0:
                    raise ConfigError(f"{where}.weight: expected a positive value, got {src.weight}")
                if kind == "replay" and not 2 <= src.views <= 8:
                    raise ConfigError(f"{where}.views: expected 2..8 views per sample, got {src.views}")
                if src.kind not in SOURCE_KINDS:
                    raise ConfigError(f"{where}.kind: expected one of {', '.join(SOURCE_KINDS)}, got {src.kind!r}")
                if src.stride < 1 or src.first < 0 or src.count < 0:
                    raise ConfigError(f"{where}: expected stride >= 1, first >= 0, count >= 0")
        unset = [
            f"{kind}.{i}.{key}={getattr(src, key)}"
            for kind in ("single_view", "replay")
            for i, src in enumerate(getattr(self, kind))
            for key in ("path", "labels")
            if PLACEHOLDER.search(getattr(src, key))
        ]
        if unset:
            raise ConfigError(
                f"dataset paths not set (recipe placeholders): {', '.join(unset)}; "
                "give each as an override, e.g. single_view.0.path=/data/frames"
            )
        if not self.single_view and not self.replay:
            raise ConfigError("single_view: expected at least one data source (single_view or replay)")

    def model_options(self) -> ModelOptions:
        """The student's model options (the node's and `fin3r`'s type): model, checkpoint, device, seed.

        No adapter (the trainer makes a fresh one) and fp32 weights: `precision` here is the autocast.
        """
        return ModelOptions.from_mapping({**self.to_dict(), "adapter": "", "precision": "fp32"})

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for the run folder, checkpoints and adapter metadata)."""
        return dataclasses.asdict(self)


def _check_type(where: str, value: Any, annotation: Any) -> Any:
    """`value` converted to the field's type (int -> float allowed); ConfigError naming `where` otherwise."""
    origin = typing.get_origin(annotation)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str):  # YAML 1.1 reads `3e-4` as a string
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected float, got {value!r}") from None
    if annotation in (int, float, str, bool):
        if isinstance(value, annotation) and not (annotation is int and isinstance(value, bool)):
            return value
        raise ConfigError(f"{where}: expected {annotation.__name__}, got {value!r} ({type(value).__name__})")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list of sources, got {value!r}")
        return [_build(SourceConfig, item, f"{where}.{i}") for i, item in enumerate(value)]
    raise ConfigError(f"{where}: unsupported field type {annotation}")


def _build(cls: type, data: Any, where: str = "") -> Any:
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        full = f"{where}.{key}" if where else str(key)
        if key not in names:
            raise ConfigError(f"{full}: unknown key; expected one of: {', '.join(sorted(names))}")
        kwargs[key] = _check_type(full, value, hints[key])
    return cls(**kwargs)


def _apply_override(data: dict[str, Any], item: str) -> None:
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override: expected KEY=VALUE, got {item!r}")
    value = yaml.safe_load(text) if text else ""
    parts = key.split(".")
    node: Any = data
    for depth, part in enumerate(parts[:-1]):
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit():
                raise ConfigError(f"{where}: expected a list index")
            index = int(part)
            while len(node) <= index:
                node.append({})
            node = node[index]
        else:
            node = node.setdefault(part, [] if part in ("single_view", "replay") else {})
    last = parts[-1]
    if isinstance(node, list):
        raise ConfigError(f"{key}: expected KEY.INDEX.FIELD for a list of sources")
    node[last] = value


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """The config of YAML file `path` (None: defaults) with `key=value` overrides applied in order."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read training config {path}: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {type(loaded).__name__}")
        data = loaded or {}
    for item in overrides:
        _apply_override(data, item)
    return _build(TrainConfig, data)
