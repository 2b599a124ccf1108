"""Evaluation of reconstructions against ground truth: depth, point maps and camera poses.

Metrics are small pure functions on arrays (`metrics`, `pointmap`, `poses`), alignments apart
(`alignment`); `depth` measures depth maps and videos under an alignment.
"""

from fin3r_lib.evaluation.alignment import ALIGNMENTS, fit_depth_alignment, icp_refine, sim3_align
from fin3r_lib.evaluation.depth import frame_depth_errors, video_depth_errors
from fin3r_lib.evaluation.metrics import abs_rel, delta_accuracy, depth_errors, rmse, valid_mask
from fin3r_lib.evaluation.pointmap import pointmap_metrics
from fin3r_lib.evaluation.poses import ate, relative_pose_auc, rpe

__all__ = [
    "ALIGNMENTS",
    "abs_rel",
    "ate",
    "delta_accuracy",
    "depth_errors",
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
