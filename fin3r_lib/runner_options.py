"""`RunnerOptions`: how the runner prepares and reconstructs frames, plain data (no torch import, so the
node's `--help` and parameter table stay fast); `fin3r_lib.runner.Runner` runs them."""

from __future__ import annotations

from dataclasses import dataclass, field

from fin3r_lib.errors import InputError
from fin3r_lib.session.config import SessionConfig
from fin3r_lib.session.scale import ScaleConfig


@dataclass
class RunnerOptions:
    """How frames are prepared and reconstructed; the same for the node, the CLI and evaluation."""

    #: 0: full size; else downscale (cv2.INTER_AREA) so that max(H, W) <= it; K scaled, depth nearest (pixel centres)
    input_max_side: int = 0
    session: SessionConfig = field(default_factory=SessionConfig)
    scale: ScaleConfig = field(default_factory=ScaleConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.input_max_side, int) or isinstance(self.input_max_side, bool) or self.input_max_side < 0:
            raise InputError(f"RunnerOptions.input_max_side: expected an integer >= 0, got {self.input_max_side!r}")
