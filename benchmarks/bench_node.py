"""The reconstruction node's overhead, latency and long-run stability (tiny model, CPU, one process).

1. Throughput: the same frames through a bare `ReconstructionSession` and through the node (a player
   publishing sensor_msgs/Image, the node's worker, every output published and received), alternated
   `--reps` times; printed: node fps / session fps (target >= 0.95). The player keeps the node's
   latest-frame slot full, so nothing is dropped and both runs process the same frames in order.
2. Latency: input at 30 Hz for `--latency-s` seconds (the node drops what it cannot take); printed:
   receive-to-publish latency p50/p99, model time p50, p99 / model time (target <= 2), drops.
3. Long stream: `--long-frames` synthetic frames (bench_session's panning camera) through the node;
   printed: per-frame time (output interval) and RSS around frame 100 vs at the end (target <= 1.05), and the
   time at mid-run vs the end (the map is at its bound by then: growth there would not be the map filling up).

    .venv/bin/python benchmarks/bench_node.py [--frames-dir ../shared/data/7scenes-redkitchen-150-199]
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
import torch
from bench_session import synthetic_frames
from child_measure import rss_bytes
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from fin3r_lib.data.frame import Frame
from fin3r_lib.session import ReconstructionSession
from fin3r_ros.conversions import rgb_to_image, seconds_to_stamp
from fin3r_ros.demo import DEFAULT_INPUT, DEFAULT_PATTERN, random_model
from fin3r_ros.parameters import default_values, session_config
from fin3r_ros.reconstruct_node import ReconstructNode

SENSOR = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


class NodeBench:
    """A node around `model`, a player publishing images and a recorder of `depth` arrival times.

    The executor spins in its own thread, blocked in rcl_wait between events, as `rclpy.spin` does in the
    node's process; the player publishes from the main thread.
    """

    def __init__(self, model, params: dict) -> None:
        self.context = Context()
        rclpy.init(args=[], context=self.context)
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        self.node = ReconstructNode(model, context=self.context, parameter_overrides=overrides)
        self.aux = rclpy.create_node("bench_aux", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.aux)
        self.pub = self.aux.create_publisher(Image, "image", SENSOR)
        self.arrivals: list[float] = []
        self.rss: list[float] = []
        self.worker_cpu: list[float] = []  # CPU seconds of the worker thread per frame (steady under load)
        handle = self.node.worker._handle

        def timed(item) -> None:
            start = time.thread_time()
            handle(item)
            self.worker_cpu.append(time.thread_time() - start)

        self.node.worker._handle = timed
        self.aux.create_subscription(Image, "depth", self._on_depth, RELIABLE)
        self.spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self.spinner.start()
        self.wait_until(lambda: self.pub.get_subscription_count() and self.node.pub_depth.get_subscription_count())

    def _on_depth(self, msg: Image) -> None:
        self.arrivals.append(time.perf_counter())
        self.rss.append(rss_bytes() / 2**20)

    def wait_until(self, predicate, timeout: float = 600.0, step: float = 0.002) -> None:
        """Poll `predicate()` every `step` seconds (sleeping) until it holds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("benchmark step did not finish in time")
            time.sleep(step)

    def publish(self, frame: Frame) -> None:
        header = Header(stamp=seconds_to_stamp(frame.stamp), frame_id="camera_optical_frame")
        self.pub.publish(rgb_to_image(frame.rgb, header))

    def keep_full(self, frames: list[Frame] | object) -> float:
        """Publish each frame as soon as the worker took the previous one; seconds until the last output."""
        start = time.perf_counter()
        sent = 0
        for frame in frames:
            handled = self.node.worker.handled
            self.publish(frame)
            sent += 1
            self.wait_until(lambda n=handled: self.node.worker.handled > n)  # taken: the slot is free again
        self.wait_until(lambda n=sent: len(self.arrivals) + sum(self.node.stats.errors.values()) >= n)
        if self.node.stats.errors:
            print(f"  rejected frames: {dict(self.node.stats.errors)}")
        return self.arrivals[-1] - start

    def at_rate(self, frames: list[Frame], hz: float, seconds: float) -> int:
        """Publish `frames` cyclically at `hz` for `seconds` (stamps = time since start); returns frames sent."""
        start = time.perf_counter()
        sent = 0
        while (now := time.perf_counter()) - start < seconds:
            frame = frames[sent % len(frames)]
            self.publish(Frame(rgb=frame.rgb, stamp=now - start))
            sent += 1
            time.sleep(max(0.0, start + sent / hz - time.perf_counter()))
        self.node.worker.wait_idle(60.0)
        return sent

    def close(self) -> None:
        self.executor.shutdown()
        self.spinner.join(5.0)
        self.node.destroy_node()
        self.context.try_shutdown()


def session_seconds(model, params: dict, frames: list[Frame]) -> float:
    """Wall time of a fresh bare session over `frames`."""
    session = ReconstructionSession(model, session_config(default_values() | params))
    start = time.perf_counter()
    for frame in frames:
        session.process(frame)
    return time.perf_counter() - start


def load_frames(folder: Path, size: tuple[int, int]) -> list[Frame]:
    """The folder's colour frames (7-Scenes layout) resized to `size` (h, w); synthetic ones when absent."""
    files = sorted(folder.glob(DEFAULT_PATTERN)) if folder.is_dir() else []
    if not files:
        print(f"{folder} not found: using 50 synthetic frames")
        return list(synthetic_frames(50, size, 6.0))
    frames = []
    for i, f in enumerate(files):
        rgb = cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)
        frames.append(Frame(rgb=cv2.resize(rgb, size[::-1], interpolation=cv2.INTER_AREA), stamp=i / 30.0, index=i))
    return frames


def window_stats(bench: NodeBench, center: int, width: int) -> tuple[float, float, float]:
    """Median output interval (s), median worker CPU per frame (s) and mean RSS (MiB) over outputs around `center`."""
    lo, hi = center - width // 2, center + width // 2
    interval = float(np.median(np.diff(bench.arrivals[lo:hi])))
    return interval, float(np.median(bench.worker_cpu[lo:hi])), float(np.mean(bench.rss[lo:hi]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames-dir", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--size", type=int, nargs=2, default=(120, 160), metavar=("H", "W"))
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--latency-s", type=float, default=20.0)
    parser.add_argument("--long-frames", type=int, default=400)
    parser.add_argument("--window", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = random_model("vggt-tiny")
    params = {"device": "cpu", "context_size": 4, "diagnostics_rate_hz": 1.0}
    frames = load_frames(args.frames_dir, tuple(args.size))
    model.predict([frames[0].rgb, frames[1].rgb])  # warm-up
    threads, (h, w) = torch.get_num_threads(), args.size
    print(f"vggt-tiny (random weights), CPU, {threads} torch thread(s), frames {w}x{h}")

    warm_up = NodeBench(model, params)  # the first node of the process pays one-time thread and allocator costs
    warm_up.keep_full(frames[:5])
    warm_up.close()
    wall, cpu = {"session": [], "node": []}, {"session": [], "node": []}
    for rep in range(args.reps):
        cpu_start = time.process_time()
        wall["session"].append(session_seconds(model, params, frames))
        cpu["session"].append(time.process_time() - cpu_start)
        bench = NodeBench(model, params)
        cpu_start = time.process_time()
        wall["node"].append(bench.keep_full(frames))
        cpu["node"].append(time.process_time() - cpu_start)
        dropped = bench.node.worker.dropped
        bench.close()
        print(
            f"  rep {rep}: session {wall['session'][-1]:.1f} s wall / {cpu['session'][-1]:.1f} s CPU, "
            f"node {wall['node'][-1]:.1f} s wall / {cpu['node'][-1]:.1f} s CPU, dropped {dropped}"
        )
    wall_ratio = float(np.median(wall["session"]) / np.median(wall["node"]))
    cpu_ratio = float(np.median(cpu["session"]) / np.median(cpu["node"]))
    print(
        f"throughput ({len(frames)} frames x {args.reps}): node / bare session fps = {wall_ratio:.3f} by wall time, "
        f"{cpu_ratio:.3f} by process CPU time (target >= 0.95)"
    )

    bench = NodeBench(model, params)
    sent = bench.at_rate(frames, 30.0, args.latency_s)
    latencies = np.asarray(bench.node.stats.latencies())
    model_times = np.asarray(bench.node.stats.timings["model_s"])  # frame by frame, aligned with latencies
    model_s = float(np.median(model_times))
    p50, p99 = np.percentile(latencies, [50, 99])
    per_frame = np.percentile(latencies / model_times, [50, 99])
    dropped = bench.node.worker.dropped
    bench.close()
    print(
        f"latency at 30 Hz ({sent} sent, {len(latencies)} processed, {dropped} dropped): p50 {p50 * 1e3:.0f} ms, "
        f"p99 {p99 * 1e3:.0f} ms; model p50 {model_s * 1e3:.0f} ms; p99 / model p50 {p99 / model_s:.2f} (target <= 2); "
        f"per-frame latency / model time p50 {per_frame[0]:.2f}, p99 {per_frame[1]:.2f}"
    )

    bench = NodeBench(model, params | {"max_map_points": 100_000, "voxel_size": 0.002})
    n = args.long_frames
    bench.keep_full(synthetic_frames(n, tuple(args.size), 6.0))
    early_t, early_cpu, early_rss = window_stats(bench, 100, args.window)
    mid_t, mid_cpu, _ = window_stats(bench, n // 2, args.window)
    late_t, late_cpu, late_rss = window_stats(bench, n - args.window // 2, args.window)
    print(
        f"long stream ({n} synthetic frames, windows of {args.window}, map {len(bench.node.session.map_cloud()[0])} "
        f"points): frame 100 vs frame {n}: per-frame wall {early_t * 1e3:.0f} -> {late_t * 1e3:.0f} ms "
        f"(ratio {late_t / early_t:.3f}), worker CPU {early_cpu * 1e3:.0f} -> {late_cpu * 1e3:.0f} ms "
        f"(ratio {late_cpu / early_cpu:.3f}), RSS {early_rss:.0f} -> {late_rss:.0f} MiB "
        f"(ratio {late_rss / early_rss:.3f}); targets <= 1.05; frame {n // 2} vs frame {n}: per-frame wall "
        f"ratio {late_t / mid_t:.3f}, worker CPU ratio {late_cpu / mid_cpu:.3f}"
    )
    bench.close()


if __name__ == "__main__":
    main()
