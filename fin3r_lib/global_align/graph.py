"""`PairGraph`: a runner sink that records a pairwise run's pair graph, then aligns it globally.

While the chain runs (each frame paired with the last keyframe and placed by Sim(3), see the session),
every new keyframe is also paired with the `window` keyframes before it, (new, older), one forward pass
each: the graph's edges (the reference's sliding-window scene graph, one direction per pair). Kept per
keyframe: its camera-frame points at `samples` fixed pixels, its chain pose, its map points (chain
world, confidence-filtered as the session's map); per frame: its stamp, chain pose and the keyframe it
was placed against. Only the last `window` keyframe images are kept. `align()` runs
`align_pair_graph` and moves every frame with the correction of its keyframe.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from fin3r_lib.data.frame import Frame
from fin3r_lib.errors import Fin3rError, InputError
from fin3r_lib.geometry import transform_points, unproject_pixels
from fin3r_lib.global_align.optimize import AlignResult, AlignSettings, PairEdge, align_pair_graph
from fin3r_lib.models.base import ReconstructionModel
from fin3r_lib.session import SessionConfig, SessionResult, VoxelMap, confidence_mask
from fin3r_lib.session.session import sample_indices


class GlobalAlignmentError(Fin3rError):
    """The run cannot be aligned globally (not a pairwise model, a session reset, nothing recorded)."""


@dataclass
class GlobalAlignment:
    """A run after global alignment: each frame's pose and depth scale (vs the chain's), the map, the report."""

    stamps_ns: list[int]
    poses: np.ndarray  # (N, 4, 4) camera-to-world, rigid
    depth_scales: np.ndarray  # (N,) multiply the chain's depth by this
    points: np.ndarray  # (P, 3) float32 map
    colors: np.ndarray  # (P, 3) uint8
    result: AlignResult
    keyframes: int
    edges: int


@dataclass
class _Node:
    points: np.ndarray  # (M, 3) camera-frame points at the sample pixels
    pose: np.ndarray  # chain pose
    map_points: np.ndarray  # chain-world map points of this keyframe
    map_colors: np.ndarray


@dataclass
class _Recent:
    node: int
    rgb: np.ndarray = field(repr=False)


class PairGraph:
    """The sink of the module docstring; `model` must be pairwise (`predict_pair`)."""

    def __init__(self, model: ReconstructionModel, config: SessionConfig, window: int = 3, samples: int = 1024) -> None:
        if not getattr(model, "pairwise", False):
            raise GlobalAlignmentError(
                f"global alignment needs a pairwise model (dust3r-*, mast3r-*), got {type(model).__name__}"
            )
        if window < 1 or samples < 16:
            raise InputError(f"PairGraph: expected window >= 1 and samples >= 16, got {window} and {samples}")
        self.model = model
        self.config = config
        self.window = window
        self.samples = samples
        self.nodes: list[_Node] = []
        self.edges: list[PairEdge] = []
        self.resets = 0
        self._recent: deque[_Recent] = deque(maxlen=window)
        self._frames: list[tuple[int, np.ndarray, int]] = []  # (stamp_ns, chain pose, node)
        self._pixels: tuple[np.ndarray, np.ndarray] | None = None

    def on_frame(self, frame: Frame, result: SessionResult) -> None:
        """Record the frame; a keyframe becomes a node and is paired with the last `window` nodes."""
        self.resets += result.was_reset
        placed = result.frame
        if self._pixels is None:
            flat = sample_indices(*placed.size, self.samples)
            self._pixels = (flat // placed.size[1], flat % placed.size[1])
        if result.is_keyframe:
            self._add_node(frame, result)
        if not self.nodes:  # cannot happen: the session's first frame is a keyframe
            raise GlobalAlignmentError("expected the run's first frame to be a keyframe")
        stamp_ns = frame.stamp_ns if frame.stamp_ns is not None else round(frame.stamp * 1e9)
        self._frames.append((int(stamp_ns), placed.cam_to_world.copy(), len(self.nodes) - 1))

    def on_skip(self, source: str, reason: str) -> None:
        """Skipped frames are not in the graph."""

    def on_finish(self, runner: object, summary: object) -> None:
        """Nothing: `align()` is called by whoever wants the alignment (a complete run)."""

    def _add_node(self, frame: Frame, result: SessionResult) -> None:
        assert self._pixels is not None
        v, u = self._pixels
        placed = result.frame
        camera = unproject_pixels(u.astype(np.float64), v.astype(np.float64), placed.depth[v, u], placed.intrinsics)
        c = self.config
        mask = confidence_mask(placed.depth, placed.depth_conf, c.min_confidence, c.confidence_top_fraction)
        s = c.map_pixel_stride
        keep = mask[::s, ::s]
        node = len(self.nodes)
        self.nodes.append(
            _Node(
                camera,
                placed.cam_to_world.copy(),
                placed.world_points[::s, ::s][keep].astype(np.float32),
                frame.rgb[::s, ::s][keep].copy(),
            )
        )
        for older in self._recent:
            pair = self.model.predict_pair(frame.rgb, older.rgb)  # type: ignore[attr-defined]
            self.edges.append(
                PairEdge(
                    node,
                    older.node,
                    pair.frame.world_points[v, u].astype(np.float64),
                    pair.other_points[v, u].astype(np.float64),
                    pair.frame.depth_conf[v, u].astype(np.float64),
                    pair.other_conf[v, u].astype(np.float64),
                )
            )
        self._recent.append(_Recent(node, frame.rgb.copy()))

    def align(self, settings: AlignSettings | None = None) -> GlobalAlignment:
        """Optimise the graph and move every recorded frame and map point accordingly."""
        if self.resets:
            raise GlobalAlignmentError(
                f"the session reset {self.resets} time(s) (time went backwards): its worlds cannot be aligned as one"
            )
        if not self.nodes:
            raise GlobalAlignmentError("no frame was reconstructed: nothing to align")
        initial = np.stack([n.pose for n in self.nodes])
        result = align_pair_graph(np.stack([n.points for n in self.nodes]), initial, self.edges, settings)
        corrections = result.corrections(initial)
        poses, scales = [], []
        for _, pose, node in self._frames:
            moved = corrections[node] @ pose
            scale = float(np.cbrt(np.linalg.det(moved[:3, :3])))
            moved[:3, :3] /= scale
            poses.append(moved)
            scales.append(scale)
        cloud = VoxelMap(self.config.voxel_size, self.config.max_map_points)
        for node, correction in zip(self.nodes, corrections, strict=True):
            cloud.add(transform_points(node.map_points, correction).astype(np.float32), node.map_colors)
        points, colors = cloud.cloud()
        return GlobalAlignment(
            stamps_ns=[f[0] for f in self._frames],
            poses=np.stack(poses),
            depth_scales=np.array(scales),
            points=points,
            colors=colors,
            result=result,
            keyframes=len(self.nodes),
            edges=len(self.edges),
        )
