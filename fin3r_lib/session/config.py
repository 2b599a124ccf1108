"""`SessionConfig`: every knob of a reconstruction session, documented once, here."""

from __future__ import annotations

from dataclasses import dataclass

from fin3r_lib.errors import SettingError


@dataclass
class SessionConfig:
    """Settings of a `ReconstructionSession`.

    Confidence filter (per-frame cloud and map): a pixel is kept when its depth is finite and positive,
    its depth confidence is at least `min_confidence` (VGGT and CUT3R confidences are 1 + exp(x) > 1,
    so 1.0 keeps everything), and it is among the `confidence_top_fraction` most confident of the
    remaining pixels of its frame (1.0 disables this relative cut; ties at the cut are kept).
    """

    context_size: int = 8  # max keyframes in a windowed backend's context (the current frame comes on top)
    keyframe_min_flow_px: float = 15.0  # median sparse flow vs the last keyframe (input pixels) for a new keyframe
    keyframe_max_interval_s: float = 2.0  # a keyframe at least this often, even without motion
    min_confidence: float = 1.2  # absolute depth-confidence floor (see the class docstring)
    confidence_top_fraction: float = 0.75  # keep this most-confident fraction of each frame's pixels
    voxel_size: float = 0.02  # map voxel size (world units)
    max_map_points: int = 500_000  # bound on the map; the least recently observed voxels are dropped first
    map_pixel_stride: int = 2  # subsample pixels entering the map (every n-th row and column)
    cloud_pixel_stride: int = 1  # subsample pixels of the per-frame cloud (`SessionResult.points`)
    reset_on_time_jump: bool = True  # time going backwards (looping bag) resets the session
    align_samples: int = 4096  # pixels per keyframe kept to fit the Sim(3) of windowed predictions
    align_trim: float = 0.2  # fraction of worst residuals dropped before the final Sim(3) fit
    max_trajectory: int = 100_000  # poses kept in `trajectory` (oldest dropped first)
    use_camera_intrinsics: bool = True  # a frame's own K (camera_info, calibration) replaces the model's

    def __post_init__(self) -> None:
        positive_ints = ("context_size", "max_map_points", "map_pixel_stride", "cloud_pixel_stride")
        for name in (*positive_ints, "align_samples", "max_trajectory"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SettingError("SessionConfig", name, "an integer >= 1", value)
        for name in ("keyframe_min_flow_px", "keyframe_max_interval_s", "min_confidence"):
            if not getattr(self, name) >= 0:
                raise SettingError("SessionConfig", name, "a number >= 0", getattr(self, name))
        if not self.voxel_size > 0:
            raise SettingError("SessionConfig", "voxel_size", "a number > 0", self.voxel_size)
        if not 0 < self.confidence_top_fraction <= 1:
            raise SettingError(
                "SessionConfig", "confidence_top_fraction", "a number in (0, 1]", self.confidence_top_fraction
            )
        if not 0 <= self.align_trim < 1:
            raise SettingError("SessionConfig", "align_trim", "a number in [0, 1)", self.align_trim)
