"""`fin3r extract`: robot logs (rosbag2 MCAP / sqlite3, ROS 1 .bag) to a frame dataset with keyframe selection."""

from __future__ import annotations

import argparse
import signal
import sys

from rosbags.typesys import Stores

from fin3r_lib.data.bag_open import list_topics
from fin3r_lib.data.extract import ExtractInterrupted, ExtractOptions, extract_frames
from fin3r_lib.data.selection import SelectionConfig


def _off_if_zero(value: float | None) -> float | None:
    return None if value is not None and value <= 0 else value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of `fin3r extract`."""
    parser.add_argument("bags", nargs="+", metavar="BAG", help="rosbag2 directory, .mcap / .db3 file or ROS 1 .bag")
    parser.add_argument("--out", help="dataset folder to write (a re-run resumes it)")
    parser.add_argument(
        "--topic", action="append", dest="topics", help="image topic (repeatable; default: every colour image topic)"
    )
    parser.add_argument(
        "--depth-topic",
        action="append",
        dest="depth_topics",
        help="aligned depth Image topic, one per colour topic in the same order (repeatable): ground-truth depth",
    )
    parser.add_argument(
        "--depth-tolerance", type=float, default=0.02, help="max stamp difference (s) pairing depth to colour"
    )
    parser.add_argument("--list", action="store_true", help="list the topics with types and counts, and exit")
    parser.add_argument("--format", choices=("png", "jpeg"), default="png", help="image file format (default png)")
    parser.add_argument("--jpeg-quality", type=int, default=95, help="JPEG quality 1..100 (default 95)")
    parser.add_argument("--max-rate", type=float, help="keep at most this many frames per second per camera")
    parser.add_argument("--start", type=float, help="skip images before this many seconds from the bag start")
    parser.add_argument("--end", type=float, help="skip images after this many seconds from the bag start")
    parser.add_argument("--min-flow", type=float, help="keyframes: median optical flow (px) from the last kept frame")
    parser.add_argument(
        "--blur-ratio", type=float, default=0.5, help="drop frames below this x the running median sharpness (0: off)"
    )
    parser.add_argument(
        "--duplicate-level",
        type=float,
        default=1.0,
        help="drop near-duplicates below this mean grey difference (0: off)",
    )
    parser.add_argument("--fixed-frame", help="TF frame the poses are expressed in (default: the root of the tree)")
    parser.add_argument("--workers", type=int, help="decode threads (default: up to 4)")
    parser.add_argument(
        "--typestore", choices=[s.value for s in Stores], help="message definitions for bags that embed none"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run `fin3r extract`; prints what was written and any damaged bag.

    Ctrl-C or SIGTERM: one line saying where it stopped; exit 128 + the signal number (130, 143).
    """
    received = [signal.SIGINT]

    def terminate(signum, frame) -> None:
        received[0] = signum
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        return _run(args)
    except ExtractInterrupted as exc:
        print(f"fin3r extract: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("fin3r extract: interrupted; run the same command again to resume", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 128 + received[0]


def _run(args: argparse.Namespace) -> int:
    if args.list:
        for info in list_topics(args.bags, Stores(args.typestore) if args.typestore else None):
            print(f"{info.topic}\t{info.msgtype}\t{info.count}")
        return 0
    if not args.out:
        print("fin3r extract: error: --out is required (or use --list)", file=sys.stderr)
        return 2
    options = ExtractOptions(
        topics=tuple(args.topics) if args.topics else None,
        depth_topics=tuple(args.depth_topics or ()),
        depth_tolerance=args.depth_tolerance,
        image_format=args.format,
        jpeg_quality=args.jpeg_quality,
        fixed_frame=args.fixed_frame,
        start=args.start,
        end=args.end,
        selection=SelectionConfig(
            max_rate=args.max_rate,
            min_flow=args.min_flow,
            blur_ratio=_off_if_zero(args.blur_ratio),
            duplicate_level=_off_if_zero(args.duplicate_level),
        ),
        workers=args.workers,
        typestore=args.typestore,
    )
    result = extract_frames(args.bags, args.out, options, progress=not args.quiet)
    for report in result.reports:
        if report.damaged:
            print(f"warning: damaged bag: {report}", file=sys.stderr)
    depthless = sum(r.no_depth for r in result.reports)
    print(
        f"{result.out}: kept {result.kept} of {result.considered} frames "
        f"({result.written} written, {result.skipped} already done)"
        + (f"; {depthless} frames without a depth image within the tolerance" if depthless else "")
    )
    return 0
