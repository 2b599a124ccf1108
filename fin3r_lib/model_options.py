"""`ModelOptions`: which model to load and how, the options the node, every `fin3r` subcommand and the
trainer share, with one set of defaults. Plain data (no torch import, so `--help` stays fast);
`fin3r_lib.models.loader.load_model(options)` loads it.

Device default: `auto`, CUDA when torch sees a GPU, else the CPU, for the node, the CLI and the
trainer alike.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, fields
from numbers import Integral
from typing import Any

from fin3r_lib.errors import ModelLoadError, SettingError

#: weights dtypes by name; `auto` keeps fp32 weights (the models autocast on CUDA themselves)
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "fp16", "bf16")
#: the largest seed torch.manual_seed takes as an unsigned 64-bit value (negative ones wrap around)
MAX_SEED = 2**64 - 1
#: `checkpoint` values meaning random initial weights (seeded by `seed`)
RANDOM_WEIGHTS = ("", "none")


@dataclass(frozen=True)
class ModelOptions:
    """Which model to load and how: the options the node, `fin3r` and the trainer share.

    `checkpoint`: `default` (the released weights), a local file or Hugging Face folder, a repo id,
    or `none` (random initial weights drawn with `seed`); `adapter`: a Fin3R adapter file, PEFT
    folder or Hub repo id, empty for the base model; `device`: `auto`, cpu, cuda, cuda:1, ...;
    `precision`: the weights' dtype (see PRECISIONS); `compile`: torch.compile the transformer blocks
    (`fin3r_lib.models.compile`; the first forward at each image size compiles, seconds to minutes).
    """

    model: str = "vggt-1b"
    checkpoint: str = "default"
    adapter: str = ""
    device: str = "auto"
    precision: str = "auto"
    seed: int = 0
    compile: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise SettingError("ModelOptions", "precision", f"one of {', '.join(PRECISIONS)}", self.precision)
        if isinstance(self.seed, bool) or not isinstance(self.seed, Integral) or not 0 <= self.seed <= MAX_SEED:
            expected = f"an integer from 0 to {MAX_SEED} (torch.manual_seed)"
            raise SettingError("ModelOptions", "seed", expected, self.seed)
        if not isinstance(self.compile, bool):
            raise SettingError("ModelOptions", "compile", "true or false", self.compile)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ModelOptions:
        """The options found in `values` (node parameters, a config dict); others keep their defaults.

        Keys that are not options are ignored; None (an unset CLI flag) counts as not given.
        """
        given = {f.name: values[f.name] for f in fields(cls) if values.get(f.name) is not None}
        return cls(**{k: str(v) if k in ("checkpoint", "adapter") else v for k, v in given.items()})

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ModelOptions:
        """The options of parsed `fin3r` arguments (see `add_arguments`)."""
        return cls.from_mapping(vars(args))

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, adapter_help: str | None = None) -> None:
        """`--model --checkpoint --adapter --device --precision --seed --compile`, with these defaults."""
        d = cls()
        parser.add_argument("--model", default=d.model, help="backbone name, e.g. vggt-1b, vggt-tiny, cut3r-512-dpt")
        parser.add_argument(
            "--checkpoint",
            default=d.checkpoint,
            help="`default` (released weights), a local file or folder, a Hugging Face repo id, or `none` (random)",
        )
        parser.add_argument(
            "--adapter",
            default=d.adapter,
            help=adapter_help
            or "Fin3R adapter: a .safetensors, a PEFT adapter folder or Hub repo id, or the "
            "authors' .pth (default: none, the base model)",
        )
        parser.add_argument("--device", default=d.device, help="`auto` (cuda when available, else cpu), cpu, cuda, ...")
        parser.add_argument("--precision", default=d.precision, choices=PRECISIONS, help="weights dtype (auto: fp32)")
        parser.add_argument(
            "--seed", type=int, default=d.seed, help="seed of the random weights of `--checkpoint none`"
        )
        parser.add_argument(
            "--compile",
            action="store_true",
            default=d.compile,
            help="torch.compile the transformer blocks (the first frame of each size is slow: compilation)",
        )

    @property
    def random_weights(self) -> bool:
        """True when `checkpoint` asks for random initial weights."""
        return self.checkpoint in RANDOM_WEIGHTS

    def load_error(self, exc: BaseException) -> ModelLoadError:
        """The one error a tool reports when loading the model these options describe failed with `exc`."""
        return ModelLoadError(
            f"cannot load model {self.model!r} (checkpoint {self.checkpoint!r}, adapter {self.adapter!r}, device "
            f"{self.device!r}): {type(exc).__name__}: {exc}"
        )
