"""`ReconstructionSession`: frames in, geometry out, in one world frame that stays consistent over time.

The session world is the first keyframe's camera frame (OpenCV optical axes); after a reset the next
frame defines it again. Two kinds of backend:

- windowed (`model.streaming` False, VGGT): every frame is predicted jointly with the last
  `context_size` keyframes; the prediction is placed with a robust Sim(3) fitted between the context
  keyframes' predicted points and the world points stored when each was placed (a fixed subsample of
  `align_samples` pixels). Stored state is bounded by `context_size`, so per-frame cost does not grow.
- streaming (`model.streaming` True, CUT3R): one `step` per frame through one stream, whose world is
  already consistent; its first frame's pose is factored out so both kinds share the same world.
- pairwise (`model.pairwise` True, DUSt3R/MASt3R): each frame is paired with the last keyframe,
  (frame, keyframe), one forward pass; the keyframe's points as seen from the frame are fitted by the
  same robust Sim(3) onto the keyframe's stored world points. Only the last keyframe is kept.

Keyframes (see `KeyframeGate`) feed the windowed context and the map; every frame gets a result.
A frame whose prediction cannot be placed (also: a non-finite pose, non-finite or non-positive focal
lengths) raises AlignmentError and leaves the session as it was;
a frame of another size than the session's first raises InputError (reset to change resolution).
A frame's own intrinsics (a paired camera_info, a dataset's calibration, on the frame's grid) replace
the model's for every unprojection (`use_camera_intrinsics`): the frame's points, the map and the
alignment samples; the model's own K stays in `SessionResult.model_intrinsics` (a diagnostic). A
frame's pose (odometry, ground truth) is not used by the session. The backbones compute only the heads
the session reads (`SESSION_HEADS`: depth and camera), not the point head.
A windowed backbone that caches encoder tokens (`caches_encoder_tokens`, VGGT) gets an
`EncoderTokenCache` of `context_size + 1` images, so each call encodes only its new frame (keyed by
pixels and the encoder's state, so an adapter change re-encodes; see `fin3r_lib.models.token_cache`).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from fin3r_lib.data.frame import Frame
from fin3r_lib.errors import InputError
from fin3r_lib.geometry import rigid_inverse, unproject_depth, unproject_pixels
from fin3r_lib.models.base import SESSION_HEADS, ReconstructionModel, check_rgb_images
from fin3r_lib.models.reconstruction import FrameResult
from fin3r_lib.models.token_cache import EncoderTokenCache
from fin3r_lib.session.align import check_finite_pose, check_intrinsics, fit_sim3_robust, transform_frame
from fin3r_lib.session.config import SessionConfig
from fin3r_lib.session.keyframes import KeyframeGate
from fin3r_lib.session.voxel_map import VoxelMap


@dataclass
class SessionResult:
    """One processed frame, in the session world."""

    frame: FrameResult  # the frame's geometry in the session world, on the input pixel grid
    stamp: float
    is_keyframe: bool
    was_reset: bool  # True when this frame started a new session because time went backwards
    timings: dict[str, float]  # seconds: gate_s, model_s, align_s, map_s, total_s
    points: np.ndarray  # (N, 3) float32 confidence-filtered world points of this frame
    colors: np.ndarray  # (N, 3) uint8
    model_intrinsics: np.ndarray | None = None  # the model's own K when the frame's K replaced it, else None
    metric_scale: float | None = None  # metres per session unit applied to it (the runner's scale), None: model units


@dataclass
class _Keyframe:
    """What a windowed session keeps of a keyframe: its image and its placed sample points."""

    rgb: np.ndarray
    points: np.ndarray  # (M, 3) float64 world points at the session's sample pixels (NaN where invalid)
    conf: np.ndarray  # (M,) depth confidence at those pixels


def confidence_mask(depth: np.ndarray, conf: np.ndarray, min_confidence: float, top_fraction: float) -> np.ndarray:
    """Pixels with finite positive depth, confidence >= `min_confidence`, among the `top_fraction` most confident."""
    with np.errstate(invalid="ignore"):
        mask = np.isfinite(depth) & (depth > 0) & np.isfinite(conf) & (conf >= min_confidence)
    if top_fraction < 1.0 and mask.any():
        mask &= conf >= np.quantile(conf[mask], 1.0 - top_fraction)
    return mask


def with_intrinsics(frame: FrameResult, intrinsics: np.ndarray) -> FrameResult:
    """`frame` with intrinsics `intrinsics` (3x3): its world points unprojected from its depth and pose with them."""
    k = np.asarray(intrinsics, dtype=np.float64)
    points = unproject_depth(frame.depth, k, frame.cam_to_world).astype(np.float32)
    return replace(frame, intrinsics=k.copy(), world_points=points)


def _capped_weights(weights: np.ndarray) -> np.ndarray:
    """Alignment weights capped at their 0.9 quantile: confidences (1 + exp(x)) span orders of magnitude,
    so a few pixels must not dominate the fit."""
    positive = weights[weights > 0]
    return np.minimum(weights, np.quantile(positive, 0.9)) if len(positive) else weights


def sample_indices(height: int, width: int, samples: int) -> np.ndarray:
    """Flat indices of a regular grid of about `samples` pixels."""
    stride = max(1, int(np.sqrt(height * width / samples)))
    v, u = np.mgrid[stride // 2 : height : stride, stride // 2 : width : stride]
    return (v * width + u).reshape(-1)


class ReconstructionSession:
    """Runs a backbone over a stream of frames; see the module docstring."""

    def __init__(
        self, model: ReconstructionModel, config: SessionConfig | None = None, *, encoder_cache: bool = True
    ) -> None:
        """`encoder_cache` False re-encodes the whole context every frame (the path without the cache)."""
        self.model = model
        self.config = config or SessionConfig()
        c = self.config
        self._gate = KeyframeGate(c.keyframe_min_flow_px, c.keyframe_max_interval_s)
        self._map = VoxelMap(c.voxel_size, c.max_map_points)
        self._pairwise = bool(getattr(model, "pairwise", False))
        self._keyframes: deque[_Keyframe] = deque(maxlen=1 if self._pairwise else c.context_size)
        self._trajectory: deque[tuple[float, np.ndarray]] = deque(maxlen=c.max_trajectory)
        self._stream = model.new_stream(**model.heads_request(SESSION_HEADS)) if model.streaming else None
        windowed = not model.streaming and not self._pairwise
        cached = encoder_cache and windowed and getattr(model, "caches_encoder_tokens", False)
        #: encoder tokens of the context keyframes and the last frame (None without a cache)
        self.token_cache = EncoderTokenCache(c.context_size + 1) if cached else None
        self._clear_state()

    def _clear_state(self) -> None:
        if self.token_cache is not None:
            self.token_cache.clear()
        self._gate.reset()
        self._map.clear()
        self._keyframes.clear()
        self._trajectory.clear()
        self._world_from_stream: np.ndarray | None = None
        self._size: tuple[int, int] | None = None
        self._samples: np.ndarray | None = None
        self._last_stamp: float | None = None
        self._num_keyframes = 0

    def reset(self) -> None:
        """Forget every frame: the next frame starts a new world."""
        if self._stream is not None:
            self._stream.reset()
        self._clear_state()

    @property
    def num_keyframes(self) -> int:
        """Keyframes accepted since the last reset."""
        return self._num_keyframes

    @property
    def trajectory(self) -> list[tuple[float, np.ndarray]]:
        """(stamp, 4x4 cam_to_world) of processed frames since the last reset, the last `max_trajectory` of them."""
        return list(self._trajectory)

    def map_cloud(self) -> tuple[np.ndarray, np.ndarray]:
        """The accumulated map: (N, 3) float32 points and (N, 3) uint8 colours."""
        return self._map.cloud()

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything the session carries between frames, as named arrays (a run's resume state).

        Gate, keyframes, map, trajectory, world placement and a streaming backend's state:
        `load_state_dict` on a session of the same model and config continues bit-exactly.
        """
        state: dict[str, np.ndarray] = {f"gate.{k}": v for k, v in self._gate.state_dict().items()}
        state.update({f"map.{k}": v for k, v in self._map.state_dict().items()})
        if self._stream is not None:
            state.update({f"stream.{k}": v for k, v in self._stream.state_dict().items()})
        kfs = list(self._keyframes)
        if kfs:
            state["keyframes.rgb"] = np.stack([kf.rgb for kf in kfs])
            state["keyframes.points"] = np.stack([kf.points for kf in kfs])
            state["keyframes.conf"] = np.stack([kf.conf for kf in kfs])
        state["trajectory.stamps"] = np.array([t for t, _ in self._trajectory], np.float64)
        state["trajectory.poses"] = np.array([p for _, p in self._trajectory], np.float64).reshape(-1, 4, 4)
        optional = {"world_from_stream": self._world_from_stream, "size": self._size, "samples": self._samples}
        state.update({k: np.asarray(v) for k, v in optional.items() if v is not None})
        if self._last_stamp is not None:
            state["last_stamp"] = np.float64(self._last_stamp)
        state["num_keyframes"] = np.int64(self._num_keyframes)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore a `state_dict` of a session with the same model and config (InputError when it does not fit)."""
        self.reset()
        self._gate.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("gate.")})
        self._map.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("map.")})
        if self._stream is not None:
            self._stream.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("stream.")})
        if "keyframes.rgb" in state:
            rgb, points, conf = state["keyframes.rgb"], state["keyframes.points"], state["keyframes.conf"]
            if len(rgb) > self.config.context_size:
                raise InputError(
                    f"session state: expected at most context_size={self.config.context_size} keyframes, got {len(rgb)}"
                )
            self._keyframes.extend(_Keyframe(r, p, c) for r, p, c in zip(rgb, points, conf, strict=True))
        poses = state["trajectory.poses"]
        self._trajectory.extend(zip(state["trajectory.stamps"].tolist(), poses, strict=True))
        self._world_from_stream = state.get("world_from_stream")
        self._size = tuple(int(v) for v in state["size"]) if "size" in state else None  # type: ignore[assignment]
        self._samples = state.get("samples")
        self._last_stamp = float(state["last_stamp"]) if "last_stamp" in state else None
        self._num_keyframes = int(state["num_keyframes"])

    def process(self, frame: Frame) -> SessionResult:
        """Reconstruct one frame and place it in the session world (see the module docstring)."""
        t_start = time.perf_counter()
        check_rgb_images([frame.rgb])
        was_reset = False
        if self.config.reset_on_time_jump and self._last_stamp is not None and frame.stamp < self._last_stamp:
            self.reset()
            was_reset = True
        if self._size is not None and frame.size != self._size:
            raise InputError(
                f"expected frames of size {self._size} like the session's first frame, got {frame.size}; reset first"
            )
        known_k = self._known_intrinsics(frame)
        decision = self._gate.decide(frame.rgb, frame.stamp)
        t_gate = time.perf_counter()
        if self._stream is not None:
            placed, model_k, t_model = self._place_streamed(frame.rgb, known_k)
        elif self._pairwise and self._keyframes:
            placed, model_k, t_model = self._place_pairwise(frame.rgb, known_k)
        else:
            placed, model_k, t_model = self._place_windowed(frame.rgb, known_k)
        t_align = time.perf_counter()

        c = self.config
        mask = confidence_mask(placed.depth, placed.depth_conf, c.min_confidence, c.confidence_top_fraction)
        s = c.cloud_pixel_stride
        points = placed.world_points[::s, ::s][mask[::s, ::s]]
        colors = frame.rgb[::s, ::s][mask[::s, ::s]]
        if decision.is_keyframe:
            self._accept_keyframe(frame, placed, mask)
        self._trajectory.append((frame.stamp, placed.cam_to_world.copy()))
        self._last_stamp = frame.stamp
        self._size = frame.size
        t_end = time.perf_counter()
        timings = {
            "gate_s": t_gate - t_start,
            "model_s": t_model,
            "align_s": t_align - t_gate - t_model,
            "map_s": t_end - t_align,
            "total_s": t_end - t_start,
        }
        model_k = model_k if known_k is not None else None
        return SessionResult(placed, frame.stamp, decision.is_keyframe, was_reset, timings, points, colors, model_k)

    def _known_intrinsics(self, frame: Frame) -> np.ndarray | None:
        """The frame's own K when the session uses it (InputError when it is not a usable 3x3 pinhole K)."""
        if not self.config.use_camera_intrinsics or frame.intrinsics is None:
            return None
        k = np.asarray(frame.intrinsics, dtype=np.float64)
        if k.shape != (3, 3) or not (np.isfinite(k).all() and k[0, 0] > 0 and k[1, 1] > 0):
            raise InputError(f"expected the frame's intrinsics as a finite 3x3 K with fx, fy > 0, got {k.tolist()}")
        return k

    @staticmethod
    def _use_k(frame: FrameResult, known_k: np.ndarray | None) -> FrameResult:
        """`frame` checked, with the known K when there is one."""
        check_finite_pose(frame)
        check_intrinsics(frame)
        return frame if known_k is None else with_intrinsics(frame, known_k)

    def _place_streamed(self, rgb: np.ndarray, known_k: np.ndarray | None) -> tuple[FrameResult, np.ndarray, float]:
        assert self._stream is not None
        t0 = time.perf_counter()
        predicted = self._stream.step(rgb, intrinsics=known_k)
        t_model = time.perf_counter() - t0
        raw = self._use_k(predicted, known_k)
        world_from_stream = self._world_from_stream
        if world_from_stream is None:
            world_from_stream = rigid_inverse(raw.cam_to_world)
        placed = transform_frame(raw, world_from_stream)
        self._world_from_stream = world_from_stream
        return placed, predicted.intrinsics, t_model

    def _place_windowed(self, rgb: np.ndarray, known_k: np.ndarray | None) -> tuple[FrameResult, np.ndarray, float]:
        context = list(self._keyframes)
        t0 = time.perf_counter()
        images = [kf.rgb for kf in context] + [rgb]
        rec = self.model.predict(images, heads=SESSION_HEADS, token_cache=self.token_cache)
        t_model = time.perf_counter() - t0
        if len(rec) != len(context) + 1:
            raise InputError(f"expected {len(context) + 1} frames from the model, got {len(rec)}")
        predicted = rec.frame(len(context))
        current = self._use_k(predicted, known_k)
        if not context:
            return transform_frame(current, rigid_inverse(current.cam_to_world)), predicted.intrinsics, t_model
        idx = self._sample_pixels(current)
        src = np.concatenate([self._sample_points(rec.frame(i), idx, known_k) for i in range(len(context))])
        dst = np.concatenate([kf.points for kf in context])
        pred_conf = np.concatenate([rec.depth_conf[i].reshape(-1)[idx] for i in range(len(context))])
        weights = _capped_weights(np.minimum(pred_conf, np.concatenate([kf.conf for kf in context])))
        sim3 = fit_sim3_robust(src, dst, weights, self.config.align_trim)
        return transform_frame(current, sim3), predicted.intrinsics, t_model

    def _place_pairwise(self, rgb: np.ndarray, known_k: np.ndarray | None) -> tuple[FrameResult, np.ndarray, float]:
        keyframe = self._keyframes[-1]
        t0 = time.perf_counter()
        pair = self.model.predict_pair(rgb, keyframe.rgb)  # type: ignore[attr-defined]
        t_model = time.perf_counter() - t0
        current = self._use_k(pair.frame, known_k)
        idx = self._sample_pixels(current)
        src = pair.other_points.reshape(-1, 3)[idx].astype(np.float64)
        weights = _capped_weights(np.minimum(pair.other_conf.reshape(-1)[idx], keyframe.conf))
        sim3 = fit_sim3_robust(src, keyframe.points, weights, self.config.align_trim)
        return transform_frame(current, sim3), pair.frame.intrinsics, t_model

    def _sample_pixels(self, frame: FrameResult) -> np.ndarray:
        if self._samples is None:
            self._samples = sample_indices(*frame.size, self.config.align_samples)
        return self._samples

    @staticmethod
    def _sample_points(frame: FrameResult, idx: np.ndarray, known_k: np.ndarray | None = None) -> np.ndarray:
        """World points (float64) of `frame` at flat pixel indices `idx` (unprojected with `known_k` when given)."""
        width = frame.size[1]
        u, v = (idx % width).astype(np.float64), (idx // width).astype(np.float64)
        k = frame.intrinsics if known_k is None else known_k
        return unproject_pixels(u, v, frame.depth.reshape(-1)[idx], k, frame.cam_to_world)

    def _accept_keyframe(self, frame: Frame, placed: FrameResult, mask: np.ndarray) -> None:
        self._gate.accept(frame.rgb, frame.stamp)
        self._num_keyframes += 1
        if self._stream is None:
            idx = self._sample_pixels(placed)
            conf = np.where(mask.reshape(-1)[idx], placed.depth_conf.reshape(-1)[idx], 0.0)
            self._keyframes.append(_Keyframe(frame.rgb.copy(), self._sample_points(placed, idx), conf))
        s = self.config.map_pixel_stride
        keep = mask[::s, ::s]
        self._map.add(placed.world_points[::s, ::s][keep], frame.rgb[::s, ::s][keep])
