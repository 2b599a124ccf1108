"""Offline global alignment of a pairwise (DUSt3R/MASt3R) run's pair graph; see `graph` and `optimize`."""

from fin3r_lib.global_align.graph import GlobalAlignment, GlobalAlignmentError, PairGraph
from fin3r_lib.global_align.optimize import AlignResult, AlignSettings, PairEdge, align_pair_graph

__all__ = [
    "AlignResult",
    "AlignSettings",
    "GlobalAlignment",
    "GlobalAlignmentError",
    "PairEdge",
    "PairGraph",
    "align_pair_graph",
]
