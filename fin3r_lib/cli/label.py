"""`fin3r label`: teacher pseudo-labels for a frame dataset (or any frame source), cached beside it.

Under `torchrun --nproc_per_node N fin3r label ...` the N processes split the frames (process K
labels items K, K + N, ...; on CUDA each on its own GPU) and the first prints the merged summary.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from fin3r_lib.errors import InputError
from fin3r_lib.training.config import SOURCE_KINDS
from fin3r_lib.training.distributed import Distributed, from_environment
from fin3r_lib.training.label_cache import LabelCache, label_frames, merge_part_summaries
from fin3r_lib.training.sources import iter_source
from fin3r_lib.training.teachers import TEACHERS, build_teacher


def parse_options(items: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` strings -> options, values read as YAML scalars (`max_depth=4.5` -> 4.5)."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"teacher option: expected KEY=VALUE, got {item!r}")
        options[key] = yaml.safe_load(value)
    return options


def default_cache_dir(source: Path, teacher: str) -> Path:
    """`<dataset>/labels/<teacher>` for a folder input; inputs that are files need `--out`."""
    if not source.is_dir():
        raise InputError(f"{source} is not a folder: give the label folder with --out")
    return source / "labels" / teacher


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of `fin3r label`."""
    parser.add_argument("source", metavar="DATASET", help="frame dataset (`fin3r extract` output), image folder or bag")
    parser.add_argument("--teacher", choices=sorted(TEACHERS), default="sensor", help="teacher (default sensor)")
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="teacher option (repeatable)"
    )
    parser.add_argument("--out", help="label folder (default DATASET/labels/TEACHER)")
    parser.add_argument("--batch-size", type=int, default=8, help="frames per teacher call (default 8)")
    parser.add_argument("--pattern", help="glob selecting an image folder's images")
    parser.add_argument(
        "--kind",
        choices=SOURCE_KINDS,
        default="auto",
        help="reader: an evaluation layout (7-Scenes, TUM, rgb/+depth/, frame dataset: with their depth) or other "
        "(image folder, video, bag); default auto, as `fin3r train` reads the source",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _open_cache(out: Path, identity: dict[str, Any], dist: Distributed) -> LabelCache:
    """The cache, made (or checked) by the first process before the others open it."""
    cache = LabelCache(out, identity) if dist.is_main else None
    dist.barrier()
    return cache or LabelCache(out, identity, create=False)


def run(args: argparse.Namespace) -> int:
    """Label the frames; prints the summary as JSON. Exit 1 when no frame could be labelled."""
    source = Path(args.source)
    options = parse_options(args.option)
    out = Path(args.out) if args.out else default_cache_dir(source, args.teacher)
    dist = from_environment(str(options.get("device", "auto")))
    try:
        teacher = build_teacher(args.teacher, **options)
        cache = _open_cache(out, teacher.identity(), dist)
        frames, total = iter_source(source, args.kind, args.pattern)
        progress = not args.quiet and dist.is_main
        summary = label_frames(frames, teacher, cache, args.batch_size, total, progress, dist.rank, dist.world)
        dist.barrier()
        if not dist.is_main:
            return 0
        found = merge_part_summaries(out, dist.world) if dist.active else summary.to_json()
    finally:
        dist.close()
    print(json.dumps({"labels": str(out), **found}, indent=2))
    if found["labelled"] + found["cached"] == 0:
        print(f"fin3r label: error: no frame of {source} could be labelled (see the reasons above)", file=sys.stderr)
        return 1
    return 0
