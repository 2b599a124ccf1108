"""Readers of evaluation sequences, all yielding `Frame`s with optional ground-truth depth, K and pose.

`open_sequence(path, kind="auto")` picks the reader: `seven_scenes`, `tum`, `image_depth` (NYU/KITTI
style folders) or `frames` (a `fin3r extract` dataset, with depth when extracted with --depth-topic).
"""

from fin3r_lib.datasets.sequence import SEQUENCE_KINDS, Sequence, open_sequence, sequence_kind

__all__ = ["SEQUENCE_KINDS", "Sequence", "open_sequence", "sequence_kind"]
