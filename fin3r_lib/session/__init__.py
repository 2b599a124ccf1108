"""The reconstruction session: keyframe gate, windowed or streaming backend, one world, a bounded map.

Used unchanged by the ROS node, the offline `fin3r reconstruct` command and evaluation.
"""

from fin3r_lib.lazy_exports import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "AlignmentError": "fin3r_lib.session.align",
        "SessionConfig": "fin3r_lib.session.config",
        "GateDecision": "fin3r_lib.session.keyframes",
        "KeyframeGate": "fin3r_lib.session.keyframes",
        "ReconstructionSession": "fin3r_lib.session.session",
        "SessionResult": "fin3r_lib.session.session",
        "confidence_mask": "fin3r_lib.session.session",
        "VoxelMap": "fin3r_lib.session.voxel_map",
    },
)
