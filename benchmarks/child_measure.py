"""One benchmark configuration per fresh child process: time and peak memory of a call, outputs kept for diffs.

A parent runs `run_child(script, args)` once per configuration, so one configuration's memory
high-water mark cannot mask another's. The child times its calls with `measure` and writes the
outputs with `save_outputs`; the parent compares them with `max_diff`. `rss_bytes` is the
benchmarks' one reader of the process's resident set.

Peak memory is what a call needs above what the process held just before it: on the CPU the
kernel's resident-set high-water mark (VmHWM, reset through /proc/self/clear_refs before the call)
minus the resident set before; on CUDA the peak allocated bytes minus the allocated bytes before.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not found in /proc/self/status")


def rss_bytes() -> int:
    """Resident set size of this process in bytes (Linux /proc)."""
    return _status_bytes("VmRSS")


def measure(fn: Callable[[], Any], device: str) -> tuple[float, int, Any]:
    """(seconds, peak bytes above the memory held before, result) of one call of `fn` on `device`."""
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
        base = rss_bytes()
    start = time.perf_counter()
    result = fn()
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() if cuda else _status_bytes("VmHWM")
    return elapsed, peak - base, result


def measure_repeated(fn: Callable[[], Any], device: str, repeats: int) -> tuple[float, int, Any]:
    """(median seconds, largest peak bytes, first result) over `repeats` calls of `fn`."""
    runs = [measure(fn, device) for _ in range(repeats)]
    return sorted(r[0] for r in runs)[len(runs) // 2], max(r[1] for r in runs), runs[0][2]


def save_outputs(path: str | Path, outputs: Mapping[str, Any]) -> None:
    """Write tensors/arrays (as float64 numpy) to an .npz file for `max_diff`."""
    arrays = {k: v.detach().cpu().double().numpy() if torch.is_tensor(v) else np.asarray(v) for k, v in outputs.items()}
    np.savez(path, **arrays)


def max_diff(path_a: str | Path, path_b: str | Path) -> float:
    """Largest absolute difference over the outputs both .npz files hold.

    0.0 when identical (equal infinities included); NaN when either side has a NaN the other does not match.
    """
    with np.load(path_a) as a, np.load(path_b) as b:
        common = sorted(set(a.files) & set(b.files))
        if not common:
            raise ValueError(f"no common outputs to compare: {sorted(a.files)} vs {sorted(b.files)}")
        with np.errstate(invalid="ignore"):
            diffs = [np.where(a[k] == b[k], 0.0, np.abs(a[k] - b[k])).max(initial=0.0) for k in common]
        return float(np.max(diffs))


def ratios(result: Mapping[str, float], reference: Mapping[str, float]) -> tuple[float, float]:
    """(time, peak memory) of one configuration's result over a reference configuration's."""
    return result["time_s"] / reference["time_s"], result["peak_bytes"] / max(reference["peak_bytes"], 1)


def run_child(script: str, args: list[str]) -> dict:
    """Run `script` with `args` in a fresh interpreter; its last stdout line is a JSON object, returned."""
    out = subprocess.run([sys.executable, script, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
