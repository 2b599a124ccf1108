"""Evaluation of reconstructions against ground truth: depth, point maps and camera poses.

Metrics are small pure functions on arrays (`metrics`, `pointmap`, `poses`), alignments apart
(`alignment`); `depth` measures depth maps and videos under an alignment. Two levels on the one
runner: `model_level` (`Runner.predict` on single frames and windows) and `system_level` (the
`SystemEvaluator` sink on a whole session run). `evaluate_depth` is what the trainer's validation calls.
"""

from fin3r_lib.evaluation.alignment import ALIGNMENTS, fit_depth_alignment, icp_refine, sim3_align
from fin3r_lib.evaluation.depth import frame_depth_errors, video_depth_errors
from fin3r_lib.evaluation.metrics import abs_rel, delta_accuracy, depth_errors, rmse, valid_mask
from fin3r_lib.evaluation.model_level import evaluate_depth, evaluate_multiview
from fin3r_lib.evaluation.pointmap import pointmap_metrics
from fin3r_lib.evaluation.poses import ate, relative_pose_auc, rpe
from fin3r_lib.evaluation.system_level import SystemEvaluator

__all__ = [
    "ALIGNMENTS",
    "SystemEvaluator",
    "abs_rel",
    "ate",
    "delta_accuracy",
    "depth_errors",
    "evaluate_depth",
    "evaluate_multiview",
    "fit_depth_alignment",
    "frame_depth_errors",
    "icp_refine",
    "pointmap_metrics",
    "relative_pose_auc",
    "rmse",
    "rpe",
    "sim3_align",
    "valid_mask",
    "video_depth_errors",
]
