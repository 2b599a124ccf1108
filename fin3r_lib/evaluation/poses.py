"""Camera-pose metrics: ATE and RPE through the `evo` library, relative-pose AUC over frame pairs.

Poses are camera-to-world 4x4 arrays (N, 4, 4), estimate and ground truth of the same N frames.
- ATE: RMSE (and mean, median, max) of the translation error after aligning the estimate to the
  ground truth: `sim3` (Umeyama with scale, for up-to-scale models), `se3` (no scale) or `none`.
- RPE: errors of the relative motion over `delta` frames, translation part (units of the ground
  truth) and rotation angle (degrees), after the same alignment.
- Relative-pose AUC@T (ScanNet-1500 / CO3D protocol): for every pair (i, j), the error is the max of
  the rotation angle error and the translation-direction angle error of the relative pose
  inv(T_j) T_i (degrees; the direction error folded to min(e, 180 - e) by default, since two-view
  methods recover the direction only up to sign); AUC@T = (1/T) integral_0^T r(e) de, where r joins
  the points (0, 0), (e_1, 1/P), ..., (e_k, k/P) of the sorted errors below T by straight lines and
  stays at k/P from e_k to T (the convention of SuperGlue's `pose_auc`, used for ScanNet-1500).
"""

from __future__ import annotations

import copy

import numpy as np

from fin3r_lib.errors import InputError

POSE_ALIGNMENTS = ("sim3", "se3", "none")
AUC_THRESHOLDS = (5.0, 10.0, 20.0)


def _check_poses(est: np.ndarray, gt: np.ndarray, minimum: int = 2) -> None:
    if est.shape != gt.shape or est.ndim != 3 or est.shape[1:] != (4, 4):
        raise InputError(f"expected two (N, 4, 4) pose arrays of the same N, got {est.shape} and {gt.shape}")
    if len(est) < minimum:
        raise InputError(f"expected at least {minimum} poses, got {len(est)}")
    if not (np.isfinite(est).all() and np.isfinite(gt).all()):
        raise InputError("expected finite poses, got NaN or inf")


def nearest_rigid(poses: np.ndarray) -> np.ndarray:
    """Poses (N, 4, 4) with each rotation block replaced by the nearest rotation (SVD projection).

    evo refuses rotations off SO(3) by more than ~1e-6; recorded ground truth (7-Scenes) is off by ~1e-4.
    """
    out = np.array(poses, dtype=np.float64)
    u, _, vt = np.linalg.svd(out[:, :3, :3])
    flip = np.linalg.det(u @ vt) < 0
    u[flip, :, -1] *= -1
    out[:, :3, :3] = u @ vt
    return out


def _trajectories(est: np.ndarray, gt: np.ndarray, stamps: np.ndarray | None):
    """evo trajectories of the estimate and the ground truth (rotations projected onto SO(3))."""
    from evo.core.trajectory import PoseTrajectory3D

    t = np.arange(len(gt), dtype=np.float64) if stamps is None else np.asarray(stamps, dtype=np.float64)
    ref = PoseTrajectory3D(poses_se3=list(nearest_rigid(gt)), timestamps=t)
    traj = PoseTrajectory3D(poses_se3=list(nearest_rigid(est)), timestamps=t.copy())
    return ref, traj


def _alignment_flags(alignment: str) -> dict[str, bool]:
    if alignment not in POSE_ALIGNMENTS:
        raise InputError(f"expected a pose alignment among {POSE_ALIGNMENTS}, got {alignment!r}")
    return {"align": alignment != "none", "correct_scale": alignment == "sim3"}


def _stats(result) -> dict[str, float]:
    return {k: float(result.stats[k]) for k in ("rmse", "mean", "median", "max")}


def ate(est: np.ndarray, gt: np.ndarray, alignment: str = "sim3", stamps: np.ndarray | None = None) -> dict[str, float]:
    """Absolute trajectory error (translation part) by `evo.main_ape.ape`: rmse, mean, median, max."""
    from evo.core.metrics import PoseRelation
    from evo.main_ape import ape

    _check_poses(est, gt, 3 if alignment != "none" else 1)
    ref, traj = _trajectories(est, gt, stamps)
    result = ape(ref, traj, PoseRelation.translation_part, **_alignment_flags(alignment))
    return _stats(result)


def rpe(
    est: np.ndarray, gt: np.ndarray, alignment: str = "sim3", delta: int = 1, stamps: np.ndarray | None = None
) -> dict[str, float]:
    """Relative pose error over `delta` frames by `evo.main_rpe.rpe`: trans_* (rmse, mean, ...) and rot_* (deg)."""
    from evo.core.metrics import PoseRelation, Unit
    from evo.main_rpe import rpe as evo_rpe

    _check_poses(est, gt, max(3, delta + 1))
    ref, traj = _trajectories(est, gt, stamps)
    out: dict[str, float] = {}
    for prefix, relation in (("trans", PoseRelation.translation_part), ("rot", PoseRelation.rotation_angle_deg)):
        result = evo_rpe(
            copy.deepcopy(ref),
            copy.deepcopy(traj),
            relation,
            delta=delta,
            delta_unit=Unit.frames,
            **_alignment_flags(alignment),
        )
        out |= {f"{prefix}_{k}": v for k, v in _stats(result).items()}
    return out


def _angle_deg(cos: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def relative_pose_errors(est: np.ndarray, gt: np.ndarray, fold_sign: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Rotation and translation-direction angle errors (degrees) of every pair i < j, each (P,)."""
    _check_poses(est, gt)
    i, j = np.triu_indices(len(gt), k=1)

    def relative(poses: np.ndarray) -> np.ndarray:
        return np.linalg.inv(poses[j]) @ poses[i]

    rel_est, rel_gt = relative(np.asarray(est, np.float64)), relative(np.asarray(gt, np.float64))
    r_err = np.einsum("pij,pik->pjk", rel_est[:, :3, :3], rel_gt[:, :3, :3])
    rot = _angle_deg((np.trace(r_err, axis1=1, axis2=2) - 1.0) / 2.0)
    t_est, t_gt = rel_est[:, :3, 3], rel_gt[:, :3, 3]
    norms = np.linalg.norm(t_est, axis=1) * np.linalg.norm(t_gt, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        trans = _angle_deg(np.sum(t_est * t_gt, axis=1) / norms)
    trans[norms == 0] = 180.0  # no direction to compare: counted as the worst error
    if fold_sign:
        trans = np.minimum(trans, 180.0 - trans)
    return rot, trans


def pose_auc(errors: np.ndarray, threshold: float) -> float:
    """AUC of the recall curve of `errors` up to `threshold`, in [0, 1] (see the module docstring)."""
    if not len(errors):
        raise InputError("expected at least one pose error, got none")
    e = np.concatenate([[0.0], np.sort(np.asarray(errors, np.float64))])
    recall = np.arange(len(e)) / (len(e) - 1)
    inside = e < threshold
    x = np.concatenate([e[inside], [threshold]])
    y = np.concatenate([recall[inside], [recall[inside][-1]]])
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2) / threshold)


def relative_pose_auc(
    est: np.ndarray, gt: np.ndarray, thresholds: tuple[float, ...] = AUC_THRESHOLDS, fold_sign: bool = True
) -> dict[str, float]:
    """AUC@T (percent) of max(rotation, translation-direction) errors over all pairs, for each threshold."""
    rot, trans = relative_pose_errors(est, gt, fold_sign)
    err = np.maximum(rot, trans)
    return {f"auc@{t:g}": 100.0 * pose_auc(err, t) for t in thresholds} | {"pairs": len(err)}
