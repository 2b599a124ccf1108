"""Global alignment of a pair graph: DUSt3R's global aligner, on sampled pixels.

Nodes are keyframes. Node i has its own points X_i (M, 3) in its camera frame at M fixed sample pixels,
a camera-to-world pose T_i (rigid) and a depth scale s_i: its world points are T_i (s_i X_i). Edges are
the pairs (i, j) the pairwise model saw: P_i, i's points in i's camera, and P_j, j's points at the same
pixels of image j, also in i's camera, with their confidences. Each edge has its own similarity S_e (the
pair's unknown scale and placement). The loss is the reference's (`BasePCOptimizer.forward`):

    mean over edges of [ mean_p w_i |T_i(s_i X_i) - S_e P_i| + mean_p w_j |T_j(s_j X_j) - S_e P_j| ]

with w = log(confidence) (0 where a point is missing). The edge scales are normalised to a fixed
geometric mean (the reference's `norm_pw_scale`; here the initial one, so the result keeps the chain's
units), which removes the collapse of everything to scale 0. Adam with betas (0.9, 0.9), lr 0.01
cosine-decayed to 1e-6 over 300 iterations: the reference's `compute_global_alignment` defaults;
the lowest-loss state seen is returned (never worse than the start).

Differs from the reference: one depth scale per frame instead of a depth per pixel, the model's
intrinsics kept, initialised from the chain's poses (not a spanning tree), M sampled pixels per frame.
The gauge is fixed afterwards: node 0 keeps its initial pose and depth scale 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from fin3r_lib.errors import InputError
from fin3r_lib.geometry import sim3_matrix, umeyama_sim3
from fin3r_lib.models.quaternion import matrix_to_quaternion, quaternion_to_matrix

#: fewest valid points (both ends) an edge needs to take part
MIN_EDGE_POINTS = 16


@dataclass
class PairEdge:
    """One pair (i, j) as the model saw it, at the nodes' sample pixels, in i's camera frame."""

    i: int
    j: int
    points_i: np.ndarray  # (M, 3) i's points (NaN where missing)
    points_j: np.ndarray  # (M, 3) j's points at the same pixels of image j
    conf_i: np.ndarray  # (M,) confidences (> 1 where trusted, as the models' 1 + exp(x))
    conf_j: np.ndarray


@dataclass(frozen=True)
class AlignSettings:
    """The optimisation's knobs (defaults: the reference's)."""

    iterations: int = 300
    lr: float = 0.01
    lr_min: float = 1e-6

    def __post_init__(self) -> None:
        if not isinstance(self.iterations, int) or self.iterations < 0:
            raise InputError(f"AlignSettings.iterations: expected an integer >= 0, got {self.iterations!r}")
        if not self.lr > 0 or not 0 <= self.lr_min <= self.lr:
            raise InputError(f"AlignSettings: expected lr > 0 and 0 <= lr_min <= lr, got {self.lr}, {self.lr_min}")


@dataclass
class AlignResult:
    """Aligned nodes: rigid camera-to-world poses, depth scales, and how the loss went."""

    poses: np.ndarray  # (K, 4, 4) float64
    scales: np.ndarray  # (K,) float64, node 0: 1
    edges_used: int
    loss_initial: float
    loss_final: float

    def corrections(self, initial_poses: np.ndarray) -> np.ndarray:
        """(K, 4, 4) similarities C_i taking node i's initial world points to its aligned ones:
        C_i = T_i diag(s_i) T_i,initial^-1 (apply it to any frame placed relative to node i)."""
        scaled = self.poses.copy()
        scaled[:, :3, :3] *= self.scales[:, None, None]
        return scaled @ np.linalg.inv(initial_poses)


def _cosine_lr(step: int, total: int, settings: AlignSettings) -> float:
    t = step / max(1, total)
    return settings.lr_min + 0.5 * (settings.lr - settings.lr_min) * (1.0 + math.cos(math.pi * t))


class _Problem(torch.nn.Module):
    """The loss of the module docstring over float64 tensors; parameters: node and edge poses and scales."""

    def __init__(self, points: np.ndarray, poses: np.ndarray, edges: list[PairEdge], unit: float) -> None:
        super().__init__()
        f64 = torch.float64
        valid = np.isfinite(points).all(-1)
        self.register_buffer("x", torch.from_numpy(np.where(valid[..., None], points, 0.0) / unit).to(f64))
        idx_i = np.array([e.i for e in edges])
        idx_j = np.array([e.j for e in edges])
        self.idx_i, self.idx_j = torch.from_numpy(idx_i), torch.from_numpy(idx_j)
        pi, wi = _edge_side([e.points_i for e in edges], [e.conf_i for e in edges], valid[idx_i])
        pj, wj = _edge_side([e.points_j for e in edges], [e.conf_j for e in edges], valid[idx_j])
        for name, value in (("p_i", pi / unit), ("p_j", pj / unit), ("w_i", wi), ("w_j", wj)):
            self.register_buffer(name, torch.from_numpy(value).to(f64))
        rot = torch.from_numpy(poses[:, :3, :3].copy())
        self.q = torch.nn.Parameter(matrix_to_quaternion(rot))
        self.t = torch.nn.Parameter(torch.from_numpy(poses[:, :3, 3] / unit))
        self.log_s = torch.nn.Parameter(torch.zeros(len(poses), dtype=f64))
        s_e, r_e, t_e = self._init_edges(poses, unit)
        self.edge_q = torch.nn.Parameter(matrix_to_quaternion(torch.from_numpy(r_e)))
        self.edge_t = torch.nn.Parameter(torch.from_numpy(t_e))
        self.edge_log_s = torch.nn.Parameter(torch.from_numpy(np.log(s_e)))
        self.log_base = float(np.log(s_e).mean())

    def _init_edges(self, poses: np.ndarray, unit: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each edge's similarity fitted (Umeyama, weighted) onto the initial world points of both ends."""
        world = self.node_world().detach().numpy()
        scales, rots, trans = [], [], []
        for e in range(len(self.idx_i)):
            src = np.concatenate([self.p_i[e].numpy(), self.p_j[e].numpy()])
            dst = np.concatenate([world[self.idx_i[e]], world[self.idx_j[e]]])
            w = np.concatenate([self.w_i[e].numpy(), self.w_j[e].numpy()])
            s, r, t = umeyama_sim3(src[w > 0], dst[w > 0], w[w > 0])
            scales.append(s)
            rots.append(r)
            trans.append(t)
        return np.array(scales), np.stack(rots), np.stack(trans)

    def node_world(self) -> torch.Tensor:
        """[K, M, 3] world points of every node."""
        rot = quaternion_to_matrix(self.q)
        return (self.x * self.log_s.exp()[:, None, None]) @ rot.transpose(-1, -2) + self.t[:, None]

    def forward(self) -> torch.Tensor:
        world = self.node_world()
        scale = (self.edge_log_s - self.edge_log_s.mean() + self.log_base).exp()[:, None, None]
        rot = quaternion_to_matrix(self.edge_q).transpose(-1, -2) * scale
        pred_i = self.p_i @ rot + self.edge_t[:, None]
        pred_j = self.p_j @ rot + self.edge_t[:, None]
        loss_i = (self.w_i * (world[self.idx_i] - pred_i).norm(dim=-1)).mean(-1)
        loss_j = (self.w_j * (world[self.idx_j] - pred_j).norm(dim=-1)).mean(-1)
        return (loss_i + loss_j).mean()


def _edge_side(points: list[np.ndarray], conf: list[np.ndarray], node_valid: np.ndarray):
    """(E, M, 3) points (0 where missing) and (E, M) weights log(conf), 0 where either end is missing."""
    p = np.stack(points).astype(np.float64)
    c = np.stack(conf).astype(np.float64)
    ok = np.isfinite(p).all(-1) & np.isfinite(c) & (c > 1.0) & node_valid
    weights = np.where(ok, np.log(np.where(ok, c, 1.0)), 0.0)
    return np.where(ok[..., None], p, 0.0), weights


def align_pair_graph(
    points: np.ndarray, poses: np.ndarray, edges: list[PairEdge], settings: AlignSettings | None = None
) -> AlignResult:
    """Align K nodes ((K, M, 3) camera-frame points, (K, 4, 4) initial rigid poses) over `edges` (see the module).

    Edges with fewer than MIN_EDGE_POINTS valid points on a side are left out; with no edge left the
    initial poses come back unchanged.
    """
    settings = settings or AlignSettings()
    points = np.asarray(points, dtype=np.float64)
    poses = np.asarray(poses, dtype=np.float64)
    if points.ndim != 3 or points.shape[-1] != 3 or poses.shape != (len(points), 4, 4):
        raise InputError(f"expected (K, M, 3) points and (K, 4, 4) poses, got {points.shape} and {poses.shape}")
    valid = np.isfinite(points).all(-1)
    usable = [e for e in edges if _edge_points(e, valid) >= MIN_EDGE_POINTS]
    if not usable:
        return AlignResult(poses.copy(), np.ones(len(poses)), 0, 0.0, 0.0)
    unit = float(np.median(np.linalg.norm(points[valid], axis=-1))) or 1.0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tensors of a few thousand points: threads cost 30x more than they give on 2 cores
    try:
        return _optimise(_Problem(points, poses, usable, unit), poses[0], unit, settings)
    finally:
        torch.set_num_threads(threads)


def _optimise(problem: _Problem, first_pose: np.ndarray, unit: float, settings: AlignSettings) -> AlignResult:
    with torch.no_grad():
        loss_initial = float(problem()) * unit
    optimizer = torch.optim.Adam(problem.parameters(), lr=settings.lr, betas=(0.9, 0.9))
    best = (loss_initial / unit, [p.detach().clone() for p in problem.parameters()])
    for step in range(settings.iterations):
        for group in optimizer.param_groups:
            group["lr"] = _cosine_lr(step, settings.iterations, settings)
        optimizer.zero_grad()
        loss = problem()
        if float(loss) < best[0]:  # Adam's fixed-size steps can leave a good start: keep the best state seen
            best = (float(loss), [p.detach().clone() for p in problem.parameters()])
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        if float(problem()) > best[0]:
            for param, kept in zip(problem.parameters(), best[1], strict=True):
                param.copy_(kept)
        loss_final = float(problem()) * unit
        rot = quaternion_to_matrix(problem.q).numpy()
        trans = problem.t.numpy() * unit
        scales = problem.log_s.exp().numpy()
    poses = _anchor(rot, trans, scales, first_pose)
    return AlignResult(poses, scales / scales[0], len(problem.idx_i), loss_initial, loss_final)


def _edge_points(edge: PairEdge, valid: np.ndarray) -> int:
    ok_i = np.isfinite(edge.points_i).all(-1) & (edge.conf_i > 1.0) & valid[edge.i]
    ok_j = np.isfinite(edge.points_j).all(-1) & (edge.conf_j > 1.0) & valid[edge.j]
    return int(min(ok_i.sum(), ok_j.sum()))


def _anchor(rot: np.ndarray, trans: np.ndarray, scales: np.ndarray, first_pose: np.ndarray) -> np.ndarray:
    """Poses moved by the similarity that gives node 0 `first_pose` and depth scale 1 (the loss is invariant)."""
    poses = np.tile(np.eye(4), (len(rot), 1, 1))
    poses[:, :3, :3], poses[:, :3, 3] = rot, trans
    rigid = first_pose @ np.linalg.inv(poses[0])
    gauge = sim3_matrix(1.0 / scales[0], np.eye(3), np.zeros(3))
    centre = sim3_matrix(1.0, np.eye(3), first_pose[:3, 3])
    sim = centre @ gauge @ np.linalg.inv(centre) @ rigid
    moved = sim @ poses
    moved[:, :3, :3] /= np.cbrt(np.linalg.det(sim[:3, :3]))
    return moved
