"""Entry point of the `fin3r` command: dispatches to subcommands.

A subcommand is a module with `add_arguments(parser)` and `run(args) -> int`, listed in `SUBCOMMANDS`
with its name and one-line help. Only the module of the subcommand being run is imported, so
`fin3r --help` imports none and `fin3r extract` does not pay for torch, PEFT or transformers.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from fin3r_lib.errors import Fin3rError


@dataclass(frozen=True)
class Subcommand:
    """One `fin3r` subcommand: its name, its one-line help and the module that implements it."""

    name: str
    help: str
    module: str


# In the order `fin3r --help` lists them.
SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand(
        "extract",
        "Extract camera frames (with calibration and TF poses) from bags into a frame dataset.",
        "fin3r_lib.cli.extract",
    ),
    Subcommand(
        "label",
        "Compute a teacher's pseudo-labels for a frame dataset once and cache them (resumable).",
        "fin3r_lib.cli.label",
    ),
    Subcommand(
        "train",
        "Train a Fin3R adapter from a YAML recipe (training/configs/) with KEY=VALUE overrides.",
        "fin3r_lib.cli.train",
    ),
    Subcommand(
        "reconstruct",
        "Reconstruct a folder of images, a video, a frame dataset or a bag: depth, map PLY, TUM trajectory.",
        "fin3r_lib.cli.reconstruct",
    ),
    Subcommand(
        "evaluate",
        "Evaluate a model and adapters on a sequence with ground truth (depth, point maps, poses, latency).",
        "fin3r_lib.cli.evaluate",
    ),
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; every subcommand gets its options, or only `command` when one is named."""
    parser = argparse.ArgumentParser(prog="fin3r", description="Fin3R reconstruction and fine-tuning tools.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for entry in SUBCOMMANDS:
        p = sub.add_parser(entry.name, help=entry.help, description=entry.help)
        if command is None or command == entry.name:
            module = importlib.import_module(entry.module)
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def requested_command(argv: Sequence[str]) -> str:
    """The subcommand `argv` names (its first word not starting with '-'), or '' when there is none."""
    return next((word for word in argv if not word.startswith("-")), "")


def main(argv: Sequence[str] | None = None) -> int:
    """Run `fin3r`; returns the process exit code (2 for usage errors, 1 for input errors)."""
    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(requested_command(words))
    args = parser.parse_args(words)
    if not hasattr(args, "_run"):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except Fin3rError as exc:
        print(f"fin3r {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
