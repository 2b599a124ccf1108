"""Point-map metrics (the 7-Scenes / NRGBD protocol of CUT3R and Pi3), nearest neighbours by KD-tree.

For a prediction P and a ground-truth cloud G, both (N, 3) in the same frame (align first):
- accuracy: distances d(p, G) = min_g ||p - g|| for p in P; `acc` their mean, `acc_med` their median;
- completeness: d(g, P) for g in G; `comp` mean, `comp_med` median;
- normal consistency: |<n_p, n_g>| between a point's unit normal and that of its nearest neighbour in the
  other cloud, `nc_acc` (P -> G) and `nc_comp` (G -> P), mean and median; `nc` = (nc_acc + nc_comp) / 2.
Normals are estimated by open3d (PCA over the `normal_neighbours` nearest points) when not given.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from fin3r_lib.errors import InputError


def _finite_cloud(points: np.ndarray, name: str) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise InputError(f"{name}: expected an (N, 3) point cloud, got shape {points.shape}")
    if not len(points):
        raise InputError(f"{name}: expected a non-empty point cloud, got 0 points")
    bad = int(np.count_nonzero(~np.isfinite(points).all(axis=1)))
    if bad:
        raise InputError(f"{name}: expected finite points, got {bad} non-finite of {len(points)}")
    return points


def nearest(points: np.ndarray, reference: np.ndarray, workers: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each of `points` to its nearest point of `reference`, and that point's index."""
    dist, idx = cKDTree(reference).query(points, k=1, workers=workers)
    return dist, idx


def estimate_normals(points: np.ndarray, neighbours: int = 30) -> np.ndarray:
    """Unit normals (N, 3) by PCA over each point's `neighbours` nearest points (open3d; sign arbitrary)."""
    import open3d as o3d

    cloud = o3d.geometry.PointCloud()
    cloud.points = o3d.utility.Vector3dVector(np.asarray(points, dtype=np.float64))
    cloud.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(knn=neighbours))
    return np.asarray(cloud.normals)


def pointmap_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    normals: bool = True,
    pred_normals: np.ndarray | None = None,
    gt_normals: np.ndarray | None = None,
    normal_neighbours: int = 30,
) -> dict[str, float]:
    """Accuracy, completeness (mean, median) and, when `normals`, normal consistency; see the module docstring."""
    pred = _finite_cloud(pred, "prediction")
    gt = _finite_cloud(gt, "ground truth")
    d_acc, i_acc = nearest(pred, gt)
    d_comp, i_comp = nearest(gt, pred)
    out = {
        "acc": float(d_acc.mean()),
        "acc_med": float(np.median(d_acc)),
        "comp": float(d_comp.mean()),
        "comp_med": float(np.median(d_comp)),
        "pred_points": len(pred),
        "gt_points": len(gt),
    }
    if not normals:
        return out
    n_pred = estimate_normals(pred, normal_neighbours) if pred_normals is None else pred_normals
    n_gt = estimate_normals(gt, normal_neighbours) if gt_normals is None else gt_normals
    nc_acc = np.abs(np.sum(n_pred * n_gt[i_acc], axis=1))
    nc_comp = np.abs(np.sum(n_gt * n_pred[i_comp], axis=1))
    out |= {
        "nc_acc": float(nc_acc.mean()),
        "nc_acc_med": float(np.median(nc_acc)),
        "nc_comp": float(nc_comp.mean()),
        "nc_comp_med": float(np.median(nc_comp)),
    }
    out["nc"] = (out["nc_acc"] + out["nc_comp"]) / 2
    return out
