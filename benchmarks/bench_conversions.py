"""Conversion speed against a plain numpy copy of the same bytes, measured in the same process.

Builds a 640x480 organized xyz+rgb PointCloud2 (PCL and compact layouts) and a 640x480 32FC1 Image,
and reads them back; each time is the median of `--repeats` runs, divided by the median time of
`bytes.copy()` for a buffer as large as the message's data. Target for building: <= 3x.

    .venv/bin/python benchmarks/bench_conversions.py [--repeats 50]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from std_msgs.msg import Header

from fin3r_ros.conversions import (
    _compat,
    array_to_image,
    cloud_to_arrays,
    depth_image_to_array,
    image_to_rgb,
    points_to_cloud,
    rgb_to_image,
)

HEIGHT, WIDTH = 480, 640
TARGET = 3.0


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    points = rng.normal(size=(HEIGHT, WIDTH, 3)).astype(np.float32)
    points[::7, ::5] = np.nan
    rgb = rng.integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    depth = rng.uniform(0.3, 8.0, size=(HEIGHT, WIDTH)).astype(np.float32)
    header = Header(frame_id="camera_optical")

    cloud_pcl = points_to_cloud(points, header, rgb=rgb)
    cloud_compact = points_to_cloud(points, header, rgb=rgb, layout="compact")
    depth_image = array_to_image(depth, header)
    rgb_image = rgb_to_image(rgb, header)
    cases = [
        (
            "build",
            "organized xyz+rgb cloud, pcl (32 B/pt)",
            lambda: points_to_cloud(points, header, rgb=rgb),
            cloud_pcl,
        ),
        (
            "build",
            "organized xyz+rgb cloud, compact (16 B/pt)",
            lambda: points_to_cloud(points, header, rgb=rgb, layout="compact"),
            cloud_compact,
        ),
        ("build", "32FC1 image", lambda: array_to_image(depth, header), depth_image),
        ("build", "rgb8 image", lambda: rgb_to_image(rgb, header), rgb_image),
        ("read", "organized xyz+rgb cloud, pcl", lambda: cloud_to_arrays(cloud_pcl), cloud_pcl),
        ("read", "32FC1 image -> metres", lambda: depth_image_to_array(depth_image), depth_image),
        ("read", "rgb8 image -> RGB", lambda: image_to_rgb(rgb_image), rgb_image),
    ]
    print(f"image codec: {_compat.image_codec.name}, cloud codec: {_compat.cloud_codec.name}, {HEIGHT}x{WIDTH}")
    print(f"{'':5} {'conversion':44} {'MB':>6} {'ms':>8} {'copy ms':>8} {'ratio':>6}")
    for kind, name, fn, msg in cases:
        same_bytes = np.frombuffer(msg.data, np.uint8).copy()
        copy_s = median_seconds(same_bytes.copy, args.repeats)
        conv_s = median_seconds(fn, args.repeats)
        ratio = conv_s / copy_s
        flag = "" if kind == "read" else ("  ok" if ratio <= TARGET else f"  > {TARGET:g}x target")
        print(
            f"{kind:5} {name:44} {len(msg.data) / 1e6:6.2f} {conv_s * 1e3:8.3f} {copy_s * 1e3:8.3f} {ratio:6.2f}{flag}"
        )


if __name__ == "__main__":
    main()
