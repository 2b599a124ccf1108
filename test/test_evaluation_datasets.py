"""Dataset readers on layouts the tests build: TUM RGB-D (association by time) and rgb/ + depth/ folders."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fin3r_lib.datasets import open_sequence
from fin3r_lib.errors import InputError
from fin3r_lib.evaluation.report import markdown_table


def _write_tum(root, rgb_stamps, depth_stamps, gt_stamps):
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    rgb_lines, depth_lines = ["# color"], ["# depth"]
    for i, t in enumerate(rgb_stamps):
        cv2.imwrite(str(root / f"rgb/{t:.6f}.png"), np.full((8, 10, 3), i * 20, np.uint8))
        rgb_lines.append(f"{t:.6f} rgb/{t:.6f}.png")
    for i, t in enumerate(depth_stamps):
        cv2.imwrite(str(root / f"depth/{t:.6f}.png"), np.full((8, 10), 5000 * (i + 1), np.uint16))
        depth_lines.append(f"{t:.6f} depth/{t:.6f}.png")
    gt_lines = ["# timestamp tx ty tz qx qy qz qw"]
    gt_lines += [f"{t:.4f} {i} 0 0 0 0 0.7071067811865476 0.7071067811865476" for i, t in enumerate(gt_stamps)]
    for name, lines in (("rgb.txt", rgb_lines), ("depth.txt", depth_lines), ("groundtruth.txt", gt_lines)):
        (root / name).write_text("\n".join(lines) + "\n")


def test_tum_rgbd_pairs_by_nearest_time_and_counts_unpaired(tmp_path):
    root = tmp_path / "rgbd_dataset_freiburg1_xyz"
    _write_tum(root, [1.0, 1.1, 1.5], [1.01, 1.095, 2.0], [0.99, 1.1, 1.49])
    seq = open_sequence(root)
    frames = list(seq)
    assert seq.kind == "tum" and [f.stamp for f in frames] == [1.0, 1.1]
    assert seq.skipped == [
        {"source": str(root / "rgb/1.500000.png"), "reason": "no depth image within the time tolerance"}
    ]
    assert [float(np.nanmean(f.depth)) for f in frames] == [1.0, 2.0]  # 5000 units per metre
    assert frames[0].intrinsics[0, 0] == 517.3  # freiburg1
    np.testing.assert_allclose(frames[1].cam_to_world[:3, 3], [1, 0, 0])
    np.testing.assert_allclose(frames[1].cam_to_world[:3, :3], [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)


def test_image_depth_folder_applies_the_depth_scale(tmp_path):
    (tmp_path / "rgb").mkdir()
    (tmp_path / "depth").mkdir()
    cv2.imwrite(str(tmp_path / "rgb/a.png"), np.zeros((4, 5, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "rgb/b.png"), np.zeros((4, 5, 3), np.uint8))
    raw = np.array([[0, 256, 512, 1024, 2560]] * 4, np.uint16)
    cv2.imwrite(str(tmp_path / "depth/a.png"), raw)
    seq = open_sequence(tmp_path, depth_scale=256.0)  # KITTI style
    (frame,) = list(seq)
    assert seq.kind == "image_depth" and len(seq.skipped) == 1 and "b" in seq.skipped[0]["source"]
    np.testing.assert_array_equal(frame.depth[0], [np.nan, 1.0, 2.0, 4.0, 10.0])


def test_unknown_folder_says_what_was_expected(tmp_path):
    with pytest.raises(InputError, match="expected a 7-Scenes folder"):
        open_sequence(tmp_path)


def test_markdown_table_has_differences_to_the_first_run():
    table = markdown_table({"base": {"a": {"x": 1.0}, "n": 3}, "tuned": {"a": {"x": 0.75}, "n": 3}})
    assert table.splitlines() == [
        "| metric | base | tuned | tuned - base |",
        "|---|---|---|---|",
        "| a.x | 1 | 0.75 | -0.25 |",
        "| n | 3 | 3 | 0 |",
    ]
