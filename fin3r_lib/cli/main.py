"""Entry point of the `fin3r` command: dispatches to subcommands.

A subcommand is a module with `NAME`, `HELP`, `add_arguments(parser)` and `run(args) -> int`; it is
listed in `SUBCOMMANDS` (module paths, imported lazily so `fin3r --help` stays fast).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from fin3r_lib.errors import Fin3rError

# Module paths of the subcommands, in the order `fin3r --help` lists them.
SUBCOMMANDS: tuple[str, ...] = (
    "fin3r_lib.cli.extract",
    "fin3r_lib.cli.label",
    "fin3r_lib.cli.train",
    "fin3r_lib.cli.reconstruct",
    "fin3r_lib.cli.evaluate",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="fin3r", description="Fin3R reconstruction and fine-tuning tools.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for path in SUBCOMMANDS:
        module = importlib.import_module(path)
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `fin3r`; returns the process exit code (2 for usage errors, 1 for input errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
