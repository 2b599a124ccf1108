"""Extraction throughput against a raw `rosbags` read + decode of the same bag, measured in the same run.

Builds MCAP bags from the 7-Scenes frames (raw rgb8 and JPEG images, CameraInfo, TF), with uncompressed
chunks (rosbags' writer), with zstd chunks of 768 KiB (the `mcap` writer, as rosbag2's recorder lays
them out: the image that fills a chunk is its last record) and with rosbags' own zstd chunks (its writer's
1 MiB: two rgb8 images a chunk, TF between them, so the TF/CameraInfo pass decompresses about half of each
chunk), then times:
- baseline: what a user writes with rosbags + rosbags-image: `AnyReader` over the image topic, deserialize
  each message, `message_to_cvimage(msg, "rgb8")` (one thread; for rgb8 that is a view of the message);
- the same reading the CameraInfo and TF topics in the same pass, for comparison: rosbags copies every record
  of a chunk, and mixing small records with the ~1 MB images makes glibc's allocator hand memory back and
  fault it in again per image, so this varies from run to run (0.4 to 0.85 of the baseline);
- `iter_bag_frames` (the extraction reader: CameraInfo pairing, TF poses), decoding inline, on 1 and on N threads;
- `extract_frames` to a dataset (selection + image files), for information: file encoding dominates it.
Prints frames/s and the ratio to the baseline (target for `iter_bag_frames`: >= 0.8).

Run: .venv/bin/python benchmarks/bench_extract.py [--repeat 8] [--best-of 5] [--workers 4]
     [--layouts uncompressed zstd "zstd by rosbags"] [--encodings rgb8 jpeg] [--no-files]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.image import message_to_cvimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))  # the bag writer of the test fixtures

from bag_fixtures import CameraSpec, rechunk_mcap, rigid, storage_file, write_bag  # noqa: E402

from fin3r_lib.data.bag import iter_bag_frames  # noqa: E402
from fin3r_lib.data.extract import ExtractOptions, extract_frames  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "7scenes-redkitchen-150-199"
LAYOUTS = ("uncompressed", "zstd", "zstd by rosbags")


def load_scene(repeat: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    colors = sorted(DATA.glob("frame-*.color.png"))
    rgb = np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in colors])
    poses = rigid(np.stack([np.loadtxt(str(p).replace(".color.png", ".pose.txt")) for p in colors]))
    # play the sequence forwards and backwards so the trajectory stays continuous
    order = np.concatenate([np.arange(len(rgb)) if k % 2 == 0 else np.arange(len(rgb))[::-1] for k in range(repeat)])
    return rgb[order], poses[order], np.loadtxt(DATA / "camera-intrinsics.txt")


def baseline(bag: Path, topic: str, also: tuple[str, ...] = ()) -> int:
    """Raw rosbags: read the image topic (and the `also` topics), deserialize, decode images to RGB."""
    count = 0
    with AnyReader([bag]) as reader:
        conns = [c for c in reader.connections if c.topic == topic or c.topic in also]
        for conn, _, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            if conn.topic == topic:
                count += message_to_cvimage(msg, "rgb8").shape[0] > 0
    return count


def best_rates(runs: dict, rounds: int) -> dict[str, tuple[float, int]]:
    """Best frames/s of each named run (a callable returning its frame count), the runs interleaved
    round by round so that a busy machine slows them alike."""
    best = dict.fromkeys(runs, (0.0, 0))
    for _ in range(rounds):
        for name, fn in runs.items():
            t = time.perf_counter()
            count = fn()
            best[name] = max(best[name], (count / (time.perf_counter() - t), count))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=8, help="passes over the 50 frames in each bag")
    parser.add_argument("--best-of", type=int, default=5, help="interleaved rounds; the best of each is kept")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS), help="chunk layouts")
    parser.add_argument("--encodings", nargs="+", choices=("rgb8", "jpeg"), default=["rgb8", "jpeg"])
    parser.add_argument("--no-files", action="store_true", help="skip extract_frames to files (slow: encoding)")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"7-Scenes frames not found at {DATA}", file=sys.stderr)
        return 1
    rgb, poses, K = load_scene(args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        for encoding, chunks in [(e, c) for c in args.layouts for e in args.encodings]:
            spec = CameraSpec(rgb, K, poses, encoding=encoding)
            name = f"bag_{encoding}_{chunks.replace(' ', '_')}"
            bag = write_bag(Path(tmp) / name, [spec], storage="mcap", zstd_chunks=chunks == "zstd by rosbags")
            if chunks == "zstd":
                rechunk_mcap(storage_file(bag), "zstd", 768 * 1024)
            label = f"{encoding}, {chunks} chunks"
            topic = spec.image_topic
            runs = {
                "baseline": lambda bag=bag, topic=topic: baseline(bag, topic),
                "rosbags read + decode with CameraInfo and TF": lambda bag=bag, topic=topic: baseline(
                    bag, topic, ("/cam/camera_info", "/tf", "/tf_static")
                ),
            }
            for w in (0, 1, args.workers):
                runs[f"iter_bag_frames, workers={w}"] = lambda bag=bag, w=w: sum(
                    1 for _ in iter_bag_frames(bag, workers=w)
                )
            for fmt in () if args.no_files else ("jpeg", "png"):
                runs[f"extract_frames to {fmt} files"] = lambda bag=bag, fmt=fmt: (
                    extract_frames(
                        [bag], tempfile.mkdtemp(dir=tmp), ExtractOptions(image_format=fmt), progress=False
                    ).considered
                )
            best = best_rates(runs, args.best_of)
            base, n = best.pop("baseline")
            print(f"[{label}] {n} frames, 640x480; baseline rosbags read + decode: {base:.1f} frames/s")
            for name, (rate, m) in best.items():
                assert m == n, (name, m, n)
                print(f"[{label}] {name}: {rate:.1f} frames/s, ratio {rate / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
