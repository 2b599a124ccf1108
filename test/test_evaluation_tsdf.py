"""TSDF fusion of GT depth: on synthetic scenes with a known surface (a sphere seen from 8 views, planes)
the fused mesh lies within a voxel of the surface and covers what the cameras saw well; through the
system-level evaluator on the real 7-Scenes frames it is the reference the GT map is measured against."""

from __future__ import annotations

import numpy as np
import pytest
from gt_backend import GroundTruthStreamingModel
from scipy.spatial import cKDTree

from fin3r_lib.data.frame import Frame
from fin3r_lib.datasets import open_sequence
from fin3r_lib.errors import InputError
from fin3r_lib.evaluation import SystemEvaluator
from fin3r_lib.evaluation.tsdf_fusion import TSDFReferenceCloud
from fin3r_lib.runner import Runner, RunnerOptions
from fin3r_lib.session import SessionConfig

H, W, F = 120, 160, 140.0
K = np.array([[F, 0, W / 2 - 0.5], [0, F, H / 2 - 0.5], [0, 0, 1]])
CENTRE, RADIUS = np.array([0.2, -0.1, 1.0]), 0.5


def _rays(cam_to_world: np.ndarray) -> np.ndarray:
    """World directions (H, W, 3) of the pixel rays, scaled to unit camera z (so t along them is z-depth)."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    cam = np.stack([(u - K[0, 2]) / F, (v - K[1, 2]) / F, np.ones_like(u)], -1)
    return cam @ cam_to_world[:3, :3].T


def _look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Camera-to-world pose (OpenCV axes: x right, y down, z forward) at `eye` looking at `target`."""
    z = (target - eye) / np.linalg.norm(target - eye)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x, np.cross(z, x), z], 1)
    pose[:3, 3] = eye
    return pose


def _frame(depth: np.ndarray, pose: np.ndarray, index: int = 0) -> Frame:
    rgb = np.zeros((H, W, 3), np.uint8)
    return Frame(rgb, float(index), intrinsics=K, cam_to_world=pose, depth=depth.astype(np.float32), index=index)


def _sphere_frames() -> list[Frame]:
    """8 views around the sphere at 1.6 m, at varying heights; depth by ray-sphere intersection (0 = miss)."""
    frames = []
    for i, a in enumerate(np.linspace(0, 2 * np.pi, 8, endpoint=False)):
        eye = CENTRE + 1.6 * np.array([np.cos(a), np.sin(a), 0.3 * np.sin(2 * a)])
        pose = _look_at(eye, CENTRE)
        d = _rays(pose)
        oc = eye - CENTRE
        a2, b, c = (d**2).sum(-1), 2 * d @ oc, oc @ oc - RADIUS**2
        disc = b * b - 4 * a2 * c
        depth = np.where(disc >= 0, (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a2), 0.0)
        frames.append(_frame(depth, pose, i))
    return frames


def _best_view_cosine(points: np.ndarray, frames: list[Frame]) -> np.ndarray:
    """Per sphere point, the largest cos(normal, direction to the camera) over the views that image it."""
    normals = (points - CENTRE) / RADIUS
    best = np.zeros(len(points))
    for f in frames:
        eye, rot = f.cam_to_world[:3, 3], f.cam_to_world[:3, :3]
        to_eye = (eye - points) / np.linalg.norm(eye - points, axis=1, keepdims=True)
        cam = (points - eye) @ rot
        u, v = F * cam[:, 0] / cam[:, 2] + K[0, 2], F * cam[:, 1] / cam[:, 2] + K[1, 2]
        imaged = (cam[:, 2] > 0) & (u > -0.5) & (u < W - 0.5) & (v > -0.5) & (v < H - 0.5)
        best = np.maximum(best, np.where(imaged, np.sum(normals * to_eye, 1), 0.0))
    return best


def test_fused_sphere_lies_within_a_voxel_of_the_surface_and_covers_what_was_seen_well():
    voxel = 0.01
    frames = _sphere_frames()
    cloud = TSDFReferenceCloud(voxel)
    for f in frames:
        cloud.add(f)
    vertices, triangles = cloud.mesh()
    assert len(vertices) > 30_000 and triangles.min() >= 0 and triangles.max() < len(vertices)
    off_surface = np.abs(np.linalg.norm(vertices - CENTRE, axis=1) - RADIUS) / voxel
    assert off_surface.max() < 1.0 and np.median(off_surface) < 0.2  # measured: 0.70 and 0.11 voxel
    # the surface the cameras saw (every pixel that hit the sphere), where some view saw it within 60 deg
    seen = []
    for f in frames:
        hit = f.depth > 0
        z = f.depth[hit].astype(np.float64)[:, None]
        seen.append(f.cam_to_world[:3, 3] + z * _rays(f.cam_to_world)[hit])
    seen = np.concatenate(seen)
    assert np.abs(np.linalg.norm(seen - CENTRE, axis=1) - RADIUS).max() < 1e-6
    well_seen = seen[_best_view_cosine(seen, frames) >= 0.5]
    assert len(well_seen) > 0.8 * len(seen)
    assert cKDTree(vertices).query(well_seen)[0].max() < voxel  # measured: 0.80 voxel


@pytest.mark.parametrize("tilt_deg", [0, 45])
def test_fused_plane_has_no_half_pixel_bias(tilt_deg):
    # plane n . x = d in camera coordinates, tilted about the image diagonal; one view
    t = np.radians(tilt_deg)
    n = np.array([np.sin(t) / np.sqrt(2), np.sin(t) / np.sqrt(2), -np.cos(t)])
    d = -1.5 * np.cos(t)
    z = d / (_rays(np.eye(4)) @ n)
    cloud = TSDFReferenceCloud(0.01)
    cloud.add(_frame(np.where((z > 0) & (z < 5), z, 0), np.eye(4)))
    signed = (cloud.points() @ n - d) / 0.01
    assert len(signed) > 10_000
    # fronto-parallel: exact; tilted: unbiased (sampling the pixel below a projection instead of the
    # nearest one biases it by 0.8 voxel here), nearest-pixel quantisation bounded
    assert abs(signed.mean()) < (1e-4 if tilt_deg == 0 else 0.1)
    assert np.abs(signed).max() < (1e-4 if tilt_deg == 0 else 1.5)


def test_bad_input_is_refused_and_an_empty_volume_gives_no_points():
    with pytest.raises(InputError, match="voxel_size > 0"):
        TSDFReferenceCloud(0.0)
    with pytest.raises(InputError, match="max_depth > 0"):
        TSDFReferenceCloud(0.01, max_depth=-1.0)
    cloud = TSDFReferenceCloud(0.01)
    assert cloud.points().shape == (0, 3)
    with pytest.raises(InputError, match="expected GT depth, intrinsics and pose"):
        cloud.add(Frame(np.zeros((H, W, 3), np.uint8), 0.0, intrinsics=K))
    cloud.add(_frame(np.zeros((H, W)), np.eye(4)))  # nothing valid to fuse: counted, not integrated
    assert cloud.points().shape == (0, 3) and (cloud.frames, cloud.empty_frames) == (0, 1)
    with pytest.raises(InputError, match="reference fusion among"):
        SystemEvaluator(normals=False, reference_fusion="mesh")


def test_system_level_ground_truth_against_the_tsdf_reference(seven_scenes_dir, seven_scenes):
    n = 8
    frames = list(open_sequence(seven_scenes_dir))[:n]
    model = GroundTruthStreamingModel(
        seven_scenes["rgb"][:n], seven_scenes["depth_mm"][:n], seven_scenes["poses"][:n], seven_scenes["K"]
    )
    evaluator = SystemEvaluator(normals=False, reference_fusion="tsdf", voxel_size=0.01)
    Runner(model, RunnerOptions(session=SessionConfig(voxel_size=0.01)), [evaluator]).run(frames)
    r = evaluator.results
    assert r["map_reference"] == "tsdf" and r["map"]["gt_points"] > 10_000
    # the session map is GT depth itself: within a voxel of the vertices fused from it (measured: median
    # 5.8 mm, of which the 1 cm spacing of the vertices is most; mean 6.9 mm)
    assert r["map"]["acc_med"] < 0.01 and r["map"]["comp_med"] < 0.01
    # the independent check: the GT points of the first frame against the mesh vertices
    f = frames[0]
    z = np.asarray(f.depth, np.float64)
    v, u = np.mgrid[0 : z.shape[0], 0 : z.shape[1]]
    k = np.asarray(f.intrinsics)
    cam = np.stack([(u - k[0, 2]) / k[0, 0] * z, (v - k[1, 2]) / k[1, 1] * z, z], -1)[z > 0]
    world = cam @ np.asarray(f.cam_to_world)[:3, :3].T + np.asarray(f.cam_to_world)[:3, 3]
    assert np.median(cKDTree(evaluator.reference).query(world)[0]) < 0.01
