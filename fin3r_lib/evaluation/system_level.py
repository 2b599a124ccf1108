"""System-level evaluation: a `Sink` on the one runner, measuring the session exactly as the node runs it.

`SystemEvaluator` records, per reconstructed frame, the session's pose, the GT pose, the depth errors
of the session's depth (per-frame `alignment`, inside the evaluation `crop`), a fixed grid of
corresponding pixels (session world point, GT world point) and the frame's GT points (fused into a
`ReferenceCloud` by voxel averaging, or a `TSDFReferenceCloud` with `reference_fusion="tsdf"`). At the
end of the run it computes: ATE / RPE of the session trajectory (evo, `pose_alignment`), Acc / Comp /
NC of the session's map against the GT cloud after the Sim(3) fitted on the corresponding pixels
(optional ICP; NC only when `normals`, the open3d normal estimation being the costliest step at the
end of a run), per-frame latency (mean, median, p95, max of the session's `total_s` and `model_s`)
and its own overhead as a fraction of model time. A session reset (time going backwards) restarts the
world: only the frames after the last reset are evaluated, and the resets are counted.
"""

from __future__ import annotations

import importlib
import time

import numpy as np

from fin3r_lib.data.frame import Frame
from fin3r_lib.errors import InputError
from fin3r_lib.evaluation.alignment import icp_refine, sim3_align
from fin3r_lib.evaluation.crops import check_crop
from fin3r_lib.evaluation.depth import aligned_depth
from fin3r_lib.evaluation.metrics import depth_errors
from fin3r_lib.evaluation.model_level import Examples, mean_of
from fin3r_lib.evaluation.pointmap import pointmap_metrics
from fin3r_lib.evaluation.poses import ate, rpe
from fin3r_lib.evaluation.reference_cloud import ReferenceCloud, gt_world_points, has_ground_truth
from fin3r_lib.evaluation.tsdf_fusion import TSDFReferenceCloud
from fin3r_lib.geometry import transform_points
from fin3r_lib.runner import Runner, RunSummary
from fin3r_lib.session import SessionResult

REFERENCE_FUSIONS = ("voxel", "tsdf")


def latency_stats(seconds: list[float]) -> dict[str, float]:
    """Mean, median, 95th percentile and max of per-frame times, in milliseconds."""
    ms = 1000.0 * np.asarray(seconds, dtype=np.float64)
    if not len(ms):
        return {}
    return {
        "mean_ms": float(ms.mean()),
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "max_ms": float(ms.max()),
    }


class SystemEvaluator:
    """A runner sink computing system-level metrics; `results` holds them after the run (see the module)."""

    def __init__(
        self,
        alignment: str = "median",
        max_depth: float | None = None,
        pose_alignment: str = "sim3",
        voxel_size: float = 0.02,
        icp: bool = False,
        correspondence_grid: int = 16,
        examples: Examples | None = None,
        normals: bool = True,
        crop: str = "none",
        reference_fusion: str = "voxel",
    ) -> None:
        self.alignment, self.max_depth, self.pose_alignment = alignment, max_depth, pose_alignment
        self.crop = check_crop(crop)
        if reference_fusion not in REFERENCE_FUSIONS:
            raise InputError(f"expected a reference fusion among {REFERENCE_FUSIONS}, got {reference_fusion!r}")
        self.reference_fusion = reference_fusion
        self.voxel_size, self.icp, self.grid, self.normals = voxel_size, icp, correspondence_grid, normals
        # one-time library imports (open3d alone takes seconds) happen here, not in the measured overhead
        needs_open3d = normals or icp or reference_fusion == "tsdf"
        for module in ("evo.main_ape", "evo.main_rpe") + (("open3d",) if needs_open3d else ()):
            importlib.import_module(module)
        self.examples = examples
        self.skipped: list[dict[str, str]] = []
        self.resets = 0
        self.overhead_s = 0.0
        self.results: dict = {}
        self.aligned_map: np.ndarray | None = None  # the session map in the GT world, after the run
        self.reference: np.ndarray | None = None  # the fused GT cloud, after the run
        self._clear()

    def _clear(self) -> None:
        self.stamps: list[float] = []
        self.poses: list[np.ndarray] = []
        self.gt_poses: list[np.ndarray | None] = []
        self.depth_rows: list[dict] = []
        self.total_s: list[float] = []
        self.model_s: list[float] = []
        self._src: list[np.ndarray] = []
        self._dst: list[np.ndarray] = []
        self._reference: ReferenceCloud | TSDFReferenceCloud = (
            TSDFReferenceCloud(self.voxel_size, max_depth=self.max_depth)
            if self.reference_fusion == "tsdf"
            else ReferenceCloud(self.voxel_size, max_depth=self.max_depth)
        )
        self._reference_frames = 0

    def on_frame(self, frame: Frame, result: SessionResult) -> None:
        """Record one reconstructed frame (`frame` as prepared by the runner)."""
        start = time.perf_counter()
        if result.was_reset:
            self.resets += 1
            self._clear()
        self.stamps.append(result.stamp)
        self.poses.append(result.frame.cam_to_world.copy())
        self.gt_poses.append(None if frame.cam_to_world is None else np.asarray(frame.cam_to_world, np.float64))
        self.total_s.append(result.timings["total_s"])
        self.model_s.append(result.timings["model_s"])
        if frame.depth is not None:
            aligned, mask, fit = aligned_depth(
                result.frame.depth, frame.depth, self.alignment, self.max_depth, self.crop
            )
            row = {**depth_errors(aligned, frame.depth, mask), "scale": fit.scale, "stamp": result.stamp}
            self.depth_rows.append(row)
            if self.examples is not None:
                self.examples.offer(f"{frame.index:06d}", frame.rgb, frame.depth, aligned)
        if has_ground_truth(frame):
            h, w = frame.size
            rows = np.linspace(0, h - 1, self.grid).round().astype(int)
            cols = np.linspace(0, w - 1, self.grid).round().astype(int)
            gt = gt_world_points(frame, self.max_depth)
            self._src.append(result.frame.world_points[np.ix_(rows, cols)].reshape(-1, 3).astype(np.float64))
            self._dst.append(gt[np.ix_(rows, cols)].reshape(-1, 3))
            self._reference.add(frame, gt)
            self._reference_frames += 1
        self.overhead_s += time.perf_counter() - start

    def on_skip(self, source: str, reason: str) -> None:
        """Count a skipped frame with its reason."""
        self.skipped.append({"source": source, "reason": reason})

    def on_finish(self, runner: Runner, summary: RunSummary) -> None:
        """Compute every system-level metric into `results`."""
        start = time.perf_counter()
        out: dict = {
            "frames": len(self.poses),
            "skipped": len(self.skipped),
            "resets": self.resets,
            "interrupted": summary.interrupted,
            "keyframes": runner.session.num_keyframes,
            "latency_total": latency_stats(self.total_s),
            "latency_model": latency_stats(self.model_s),
        }
        if self.depth_rows:
            out["depth"] = mean_of(self.depth_rows, ("abs_rel", "rmse", "delta1")) | {
                "alignment": self.alignment,
                "crop": self.crop,
            }
        out |= self._trajectory_metrics()
        out |= self._map_metrics(runner)
        self.overhead_s += time.perf_counter() - start
        model_total = float(np.sum(self.model_s))
        out["overhead_s"] = self.overhead_s
        out["overhead_ratio"] = self.overhead_s / model_total if model_total > 0 else float("nan")
        self.results = out

    def _trajectory_metrics(self) -> dict:
        known = [i for i, g in enumerate(self.gt_poses) if g is not None]
        if len(known) < 3:
            return {}
        est = np.stack([self.poses[i] for i in known])
        gt = np.stack([self.gt_poses[i] for i in known])  # type: ignore[misc]
        stamps = np.asarray([self.stamps[i] for i in known])
        return {
            "ate": ate(est, gt, self.pose_alignment, stamps),
            "rpe": rpe(est, gt, self.pose_alignment, 1, stamps),
            "pose_alignment": self.pose_alignment,
        }

    def map_alignment(self) -> np.ndarray:
        """The Sim(3) (4x4) from the session world to the GT world, fitted on the corresponding pixels."""
        return sim3_align(np.concatenate(self._src), np.concatenate(self._dst))

    def _map_metrics(self, runner: Runner) -> dict:
        points, _ = runner.map_cloud()
        if not self._src or not len(points):
            return {}
        reference = self._reference.points()
        sim3 = self.map_alignment()
        if self.icp:
            sim3 = icp_refine(points, reference, sim3, max_distance=5 * self.voxel_size)
        self.aligned_map = transform_points(points.astype(np.float64), sim3)
        self.reference = reference
        return {
            "map": pointmap_metrics(self.aligned_map, reference, normals=self.normals),
            "map_scale": float(np.cbrt(np.linalg.det(sim3[:3, :3]))),
            "map_reference": self.reference_fusion,
        }

    def aligned_trajectory(self) -> tuple[np.ndarray, np.ndarray]:
        """Session camera positions mapped into the GT world by the map's Sim(3), and the GT positions (N, 3)."""
        known = [i for i, g in enumerate(self.gt_poses) if g is not None]
        sim3 = self.map_alignment()
        est = transform_points(np.stack([self.poses[i][:3, 3] for i in known]), sim3)
        return est, np.stack([self.gt_poses[i][:3, 3] for i in known])  # type: ignore[index]
