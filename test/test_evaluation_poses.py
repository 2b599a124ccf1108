"""ATE / RPE equal evo's command line on the same trajectories; relative-pose AUC on hand examples."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from fin3r_lib.evaluation.poses import ate, pose_auc, relative_pose_auc, relative_pose_errors, rpe
from fin3r_lib.geometry import sim3_matrix
from fin3r_lib.outputs import write_tum


def _trajectory(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, :3, :3] = Rotation.from_rotvec(np.cumsum(rng.normal(0, 0.1, (n, 3)), axis=0)).as_matrix()
    poses[:, :3, 3] = np.cumsum(rng.normal(0, 0.2, (n, 3)), axis=0)
    return poses


def _noisy_similar(gt: np.ndarray, seed: int) -> np.ndarray:
    """gt moved by a Sim(3) (scale 0.5), with rotation and translation noise."""
    rng = np.random.default_rng(seed)
    world = sim3_matrix(0.5, Rotation.random(random_state=seed).as_matrix(), np.array([1.0, 2.0, -0.5]))
    est = world @ gt
    est[:, :3, :3] = Rotation.from_rotvec(rng.normal(0, 0.02, (len(gt), 3))).as_matrix() @ gt[:, :3, :3]
    est[:, :3, 3] += rng.normal(0, 0.03, (len(gt), 3))
    est[:, :3, :3] = world[:3, :3] / 0.5 @ est[:, :3, :3]
    return est


def _evo(tool: str, *args: str) -> float:
    exe = Path(sys.executable).with_name(tool)
    if not exe.is_file():
        pytest.skip(f"{tool} (evo's command line) is not installed beside {sys.executable}")
    out = subprocess.run([str(exe), "tum", *args], capture_output=True, text=True, check=True)
    match = re.search(r"^\s*rmse\s+([-+0-9.eE]+)\s*$", out.stdout, re.MULTILINE)
    assert match, out.stdout
    return float(match.group(1))


@pytest.fixture(scope="module")
def trajectories(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("tum")
    gt = _trajectory(40, 0)
    est = _noisy_similar(gt, 1)
    stamps = np.arange(40) * 0.1 + 100.0
    write_tum(folder / "gt.txt", stamps, gt)
    write_tum(folder / "est.txt", stamps, est)
    return {"gt": gt, "est": est, "stamps": stamps, "files": (str(folder / "gt.txt"), str(folder / "est.txt"))}


def test_ate_equals_evo_ape_command_line(trajectories):
    t = trajectories
    ours_sim3 = ate(t["est"], t["gt"], "sim3", t["stamps"])["rmse"]
    ours_se3 = ate(t["est"], t["gt"], "se3", t["stamps"])["rmse"]
    assert ours_sim3 == pytest.approx(_evo("evo_ape", *t["files"], "-as"), rel=1e-5)
    assert ours_se3 == pytest.approx(_evo("evo_ape", *t["files"], "-a"), rel=1e-5)
    assert 0 < ours_sim3 < ours_se3  # the estimate is at half scale: SE(3) alone cannot align it


def test_rpe_equals_evo_rpe_command_line(trajectories):
    t = trajectories
    ours = rpe(t["est"], t["gt"], "sim3", delta=1, stamps=t["stamps"])
    common = ("-as", "--delta", "1", "--delta_unit", "f")
    assert ours["trans_rmse"] == pytest.approx(_evo("evo_rpe", *t["files"], *common, "-r", "trans_part"), rel=1e-5)
    assert ours["rot_rmse"] == pytest.approx(_evo("evo_rpe", *t["files"], *common, "-r", "angle_deg"), rel=1e-5)


def test_perfect_trajectory_has_zero_errors(trajectories):
    gt = trajectories["gt"]
    assert ate(gt, gt)["rmse"] == pytest.approx(0.0, abs=1e-9)
    assert rpe(gt, gt)["rot_max"] == pytest.approx(0.0, abs=1e-6)


def test_pose_auc_on_hand_examples():
    # points (0,0), (1,.5), (3,1), flat to 5: area 0.25 + 1.5 + 2 = 3.75 of 5
    assert pose_auc(np.array([3.0, 1.0]), 5.0) == pytest.approx(0.75)
    # points (0,0), (1,.5), flat to 2: area 0.25 + 0.5 of 2
    assert pose_auc(np.array([3.0, 1.0]), 2.0) == pytest.approx(0.375)
    assert pose_auc(np.array([7.0]), 5.0) == 0.0


def test_relative_pose_errors_of_a_rotated_second_camera():
    gt = np.tile(np.eye(4), (2, 1, 1))
    gt[1, :3, 3] = [1.0, 0.0, 0.0]
    est = gt.copy()
    est[1, :3, :3] = Rotation.from_euler("z", 10, degrees=True).as_matrix()
    rot, trans = relative_pose_errors(est, gt)
    # relative pose inv(T1) T0: rotation off by 10 deg, translation -R^T t turned by 10 deg
    assert rot == pytest.approx([10.0]) and trans == pytest.approx([10.0])
    auc = relative_pose_auc(est, gt)
    assert auc["auc@5"] == 0.0 and auc["auc@20"] == pytest.approx(75.0) and auc["pairs"] == 1


def test_pose_auc_equals_a_dense_numerical_integral_of_the_recall_curve():
    errors = np.random.default_rng(3).gamma(2.0, 4.0, size=200)
    e = np.sort(errors)
    for threshold in (5.0, 10.0, 20.0):
        # recall by linear interpolation through (0, 0), (e_k, k/P), held at its last value up to the threshold
        x = np.linspace(0.0, threshold, 2_000_001)
        below = e[e < threshold]
        recall = np.interp(x, np.concatenate([[0.0], below]), np.arange(len(below) + 1) / len(e))
        assert pose_auc(errors, threshold) == pytest.approx(np.trapezoid(recall, x) / threshold, abs=1e-8)


def test_relative_pose_auc_of_noisy_rotations_equals_the_per_pair_maximum_angle():
    rng = np.random.default_rng(4)
    gt = _trajectory(6, 5)
    est = gt.copy()
    est[:, :3, :3] = Rotation.from_rotvec(rng.normal(0, 0.05, (6, 3))).as_matrix() @ gt[:, :3, :3]
    rot, trans = [], []
    for i in range(6):
        for j in range(i + 1, 6):
            # relative poses written out with rotations and translations separately
            r_e = est[j, :3, :3].T @ est[i, :3, :3]
            r_g = gt[j, :3, :3].T @ gt[i, :3, :3]
            t_e = est[j, :3, :3].T @ (est[i, :3, 3] - est[j, :3, 3])
            t_g = gt[j, :3, :3].T @ (gt[i, :3, 3] - gt[j, :3, 3])
            rot.append(np.degrees(Rotation.from_matrix(r_e @ r_g.T).magnitude()))
            cos = t_e @ t_g / np.linalg.norm(t_e) / np.linalg.norm(t_g)
            angle = np.degrees(np.arccos(np.clip(cos, -1, 1)))
            trans.append(min(angle, 180 - angle))
    got_rot, got_trans = relative_pose_errors(est, gt)
    assert got_rot == pytest.approx(rot, abs=1e-6) and got_trans == pytest.approx(trans, abs=1e-6)
    worst = np.maximum(rot, trans)
    auc = relative_pose_auc(est, gt)
    assert auc["auc@10"] == pytest.approx(100 * pose_auc(worst, 10.0)) and auc["pairs"] == 15
    assert 0 < auc["auc@5"] < auc["auc@10"] < auc["auc@20"] <= 100
