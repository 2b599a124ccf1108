"""The `reconstruct_node` console script: `-h` / `--help` is answered before the node module (and with it
torch and the model code) is imported, in a fraction of a second; anything else runs the node's `main`."""

from __future__ import annotations

import sys

from fin3r_ros.parameters import asks_for_help, help_text


def main(args: list[str] | None = None) -> int:
    """`reconstruct_node [-h] [--ros-args ...]`: the usage and parameter table, or the node until shutdown."""
    if asks_for_help(sys.argv if args is None else args):
        print(help_text(), end="")
        return 0
    from fin3r_ros.reconstruct_node import main as run_node  # torch and the models: only to run the node

    return run_node(args)
