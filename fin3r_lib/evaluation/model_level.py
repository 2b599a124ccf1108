"""Model-level evaluation through `Runner.predict`: single frames (monocular) and windows of S views.

- `evaluate_depth`: each frame predicted alone; AbsRel / RMSE / delta1 per frame under `alignment`
  (fitted per frame), then the mean over frames. This is what the trainer's validation calls.
- `evaluate_multiview`: consecutive windows of `window` frames predicted jointly; per window, video
  depth (one `video_alignment` for the window), point-map Acc / Comp / NC after a Sim(3) (Umeyama on
  corresponding pixels, optional ICP), ATE of the window's cameras; relative-pose AUC over all pairs
  of every window. Frames are prepared exactly as the session prepares them (input_max_side).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from fin3r_lib.data.frame import Frame
from fin3r_lib.errors import InputError
from fin3r_lib.evaluation.alignment import icp_refine, sim3_align
from fin3r_lib.evaluation.depth import aligned_depth, video_depth_errors
from fin3r_lib.evaluation.metrics import depth_errors, valid_mask
from fin3r_lib.evaluation.pointmap import pointmap_metrics
from fin3r_lib.evaluation.poses import AUC_THRESHOLDS, ate, pose_auc, relative_pose_errors
from fin3r_lib.evaluation.reference_cloud import gt_world_points, has_ground_truth
from fin3r_lib.geometry import transform_points
from fin3r_lib.models.base import ReconstructionModel
from fin3r_lib.runner import Runner, RunnerOptions


@dataclass
class DepthExample:
    """One frame kept for plots: its image, GT depth and the aligned predicted depth."""

    name: str
    rgb: np.ndarray
    gt: np.ndarray
    pred: np.ndarray


@dataclass
class Examples:
    """Collects up to `limit` DepthExamples (the first frames evaluated)."""

    limit: int = 4
    items: list[DepthExample] = field(default_factory=list)

    def offer(self, name: str, rgb: np.ndarray, gt: np.ndarray, pred: np.ndarray) -> None:
        """Keep this example while fewer than `limit` are kept."""
        if len(self.items) < self.limit:
            self.items.append(DepthExample(name, rgb, gt, pred))


def as_runner(model_or_runner: ReconstructionModel | Runner, options: RunnerOptions | None = None) -> Runner:
    """The runner to predict with: the given one, or a new one around the given model."""
    if isinstance(model_or_runner, Runner):
        return model_or_runner
    return Runner(model_or_runner, options)


def mean_of(rows: list[dict[str, float]], keys: Iterable[str]) -> dict[str, float]:
    """Mean over rows of each key, ignoring NaN (NaN when no row has a value)."""
    out = {}
    for k in keys:
        values = np.array([r[k] for r in rows], dtype=np.float64)
        out[k] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    return out


def _with_depth(frames: Iterable[Frame]) -> tuple[list[Frame], int]:
    kept, without = [], 0
    for f in frames:
        if f.depth is None:
            without += 1
        else:
            kept.append(f)
    return kept, without


def evaluate_depth(
    model_or_runner: ReconstructionModel | Runner,
    frames: Iterable[Frame],
    alignment: str = "median",
    max_depth: float | None = None,
    examples: Examples | None = None,
    crop: str = "none",
) -> dict:
    """Monocular depth: mean AbsRel, RMSE, delta1 over the frames with GT depth, and `per_frame` rows.

    Only the pixels inside the evaluation `crop` (`crops.CROPS`, e.g. `garg` for KITTI) count. Frames
    without GT depth are skipped and counted (`frames_without_depth`).
    """
    runner = as_runner(model_or_runner)
    with_depth, without = _with_depth(frames)
    if not with_depth:
        raise InputError(f"expected frames with ground-truth depth, got none (of {without})")
    rows = []
    for frame in with_depth:
        prepared = runner.prepare(frame)
        pred = runner.predict([frame]).depth[0]
        aligned, mask, fit = aligned_depth(pred, prepared.depth, alignment, max_depth, crop)
        row = {**depth_errors(aligned, prepared.depth, mask), "scale": fit.scale, "shift": fit.shift}
        rows.append({"source": frame.source or str(frame.index), **row})
        if examples is not None:
            examples.offer(f"{frame.index:06d}", prepared.rgb, prepared.depth, aligned)
    keys = ("abs_rel", "rmse", "delta1")
    return {
        **mean_of(rows, keys),
        "alignment": alignment,
        "crop": crop,
        "frames": len(rows),
        "frames_without_depth": without,
        "per_frame": rows,
    }


def _subsample(mask: np.ndarray, limit: int) -> np.ndarray:
    """Flat indices of at most `limit` evenly spaced True entries of `mask`."""
    idx = np.flatnonzero(mask)
    if len(idx) > limit:
        idx = idx[np.linspace(0, len(idx) - 1, limit).round().astype(int)]
    return idx


def _window_pointmap(pred_pts: np.ndarray, gt_pts: np.ndarray, icp: bool, max_points: int) -> dict[str, float]:
    """Acc / Comp / NC of a window's predicted points against its GT points, after Sim(3) (+ ICP)."""
    pred_flat, gt_flat = pred_pts.reshape(-1, 3), gt_pts.reshape(-1, 3)
    valid = np.isfinite(pred_flat).all(1) & np.isfinite(gt_flat).all(1)
    idx = _subsample(valid, max_points)
    sim3 = sim3_align(pred_flat[idx], gt_flat[idx])
    if icp:
        extent = np.linalg.norm(np.ptp(gt_flat[idx], axis=0))
        sim3 = icp_refine(pred_flat[idx], gt_flat[idx], sim3, max_distance=0.05 * extent)
    return pointmap_metrics(transform_points(pred_flat[idx], sim3), gt_flat[idx])


def evaluate_multiview(
    model_or_runner: ReconstructionModel | Runner,
    frames: Iterable[Frame],
    window: int = 4,
    video_alignment: str = "scale",
    max_depth: float | None = None,
    icp: bool = False,
    max_points: int = 20_000,
    crop: str = "none",
) -> dict:
    """Multi-view metrics over consecutive windows of `window` frames with GT depth, K and pose (see module).

    The evaluation `crop` applies to the video-depth errors."""
    if window < 2:
        raise InputError(f"expected a window of at least 2 views, got {window}")
    runner = as_runner(model_or_runner)
    usable = [f for f in frames if has_ground_truth(f)]
    windows = [usable[i : i + window] for i in range(0, len(usable) - window + 1, window)]
    if not windows:
        raise InputError(f"expected at least {window} frames with GT depth, intrinsics and pose, got {len(usable)}")
    rows, pair_errors = [], []
    for views in windows:
        prepared = [runner.prepare(f) for f in views]
        rec = runner.predict(views)
        gt_depth = np.stack([p.depth for p in prepared])
        gt_poses = np.stack([p.cam_to_world for p in prepared])
        gt_pts = np.stack([gt_world_points(p, max_depth) for p in prepared])
        pred_pts = np.where(valid_mask(gt_depth, rec.depth, max_depth)[..., None], rec.world_points, np.nan)
        row = {
            f"video_{k}": v
            for k, v in video_depth_errors(rec.depth, gt_depth, video_alignment, max_depth, crop).items()
        }
        row |= _window_pointmap(pred_pts, gt_pts, icp, max_points)
        if window >= 3:
            row["ate"] = ate(rec.cam_to_world, gt_poses, "sim3")["rmse"]
        rot, trans = relative_pose_errors(rec.cam_to_world, gt_poses)
        pair_errors.append(np.maximum(rot, trans))
        rows.append(row)
    errors = np.concatenate(pair_errors)
    keys = [k for k in rows[0] if k not in ("pred_points", "gt_points", "video_pixels")]
    return {
        **mean_of(rows, keys),
        **{f"auc@{t:g}": 100.0 * pose_auc(errors, t) for t in AUC_THRESHOLDS},
        "windows": len(windows),
        "window": window,
        "video_alignment": video_alignment,
        "crop": crop,
        "icp": icp,
        "pairs": len(errors),
    }
