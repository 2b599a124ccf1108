"""The reconstruction session: keyframe gate, windowed or streaming backend, one world, a bounded map.

Used unchanged by the ROS node, the offline `fin3r reconstruct` command and evaluation.
"""

from fin3r_lib.session.align import AlignmentError
from fin3r_lib.session.config import SessionConfig
from fin3r_lib.session.keyframes import GateDecision, KeyframeGate
from fin3r_lib.session.session import ReconstructionSession, SessionResult, confidence_mask
from fin3r_lib.session.voxel_map import VoxelMap

__all__ = [
    "AlignmentError",
    "GateDecision",
    "KeyframeGate",
    "ReconstructionSession",
    "SessionConfig",
    "SessionResult",
    "VoxelMap",
    "confidence_mask",
]
