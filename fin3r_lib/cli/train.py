"""`fin3r train CONFIG.yaml [KEY=VALUE ...]`: distil a Fin3R adapter from a training config (resumable).

Under `torchrun --nproc_per_node N` it trains data-parallel (`fin3r_lib.training.distributed`); only
rank 0 prints and writes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fin3r_lib.training.config import load_config
from fin3r_lib.training.distributed import from_environment
from fin3r_lib.training.sources import build_sources
from fin3r_lib.training.trainer import Trainer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of `fin3r train`."""
    parser.add_argument("config", metavar="CONFIG.yaml", help="training recipe (see training/configs/)")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. steps=200 single_view.0.path=DIR"
    )
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in `out`")
    parser.add_argument("--max-steps", type=int, help="stop after this many more steps (a checkpoint is written)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Read the config and its sources, train, print a JSON summary (adapter path, steps, validation, skips)."""
    cfg = load_config(Path(args.config), args.overrides)
    sources = build_sources(cfg)
    dist = from_environment(cfg.device)
    try:
        trainer = Trainer(cfg, sources.single_view, sources.replay, sources.validation, dist=dist)
        result = trainer.run(resume=args.resume, max_steps=args.max_steps, progress=not args.quiet)
    finally:
        dist.close()
    if not dist.is_main:
        return 0
    last = result.history[-1] if result.history else {}
    summary = {
        "adapter": result.files.get("last"),
        "best": result.files.get("best"),
        "checkpoint": result.files.get("checkpoint"),
        "step": result.step,
        "loss": last.get("loss"),
        "validation": result.validation,
        "frozen_tensors_checked": result.frozen_checked,
        "processes": dist.world,
        "frames": {"single_view": [len(s) for s in sources.single_view], "replay": [len(r) for r in sources.replay]},
        "skipped": sources.skipped,
    }
    print(json.dumps(summary, indent=2))
    return 0
