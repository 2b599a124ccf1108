"""Files of a global alignment in a `fin3r reconstruct` output folder (beside the chain's own files).

`trajectory_aligned.txt` (TUM, the chain's stamps), `map_aligned.ply`, `alignment.json` (keyframes,
edges, the loss before and after, each frame's depth scale vs its `depth/` file).
"""

from __future__ import annotations

import json
from pathlib import Path

from fin3r_lib.global_align.graph import GlobalAlignment
from fin3r_lib.outputs import TUM_HEADER, format_stamp_ns, tum_line, write_ply


def write_alignment(out: str | Path, alignment: GlobalAlignment, names: list[str]) -> None:
    """Write the three files into `out`; `names` are the frames' output names, in the run's order."""
    out = Path(out)
    lines = [TUM_HEADER] + [
        tum_line(format_stamp_ns(stamp), pose) for stamp, pose in zip(alignment.stamps_ns, alignment.poses, strict=True)
    ]
    (out / "trajectory_aligned.txt").write_text("\n".join(lines) + "\n")
    write_ply(out / "map_aligned.ply", alignment.points, alignment.colors)
    r = alignment.result
    doc = {
        "keyframes": alignment.keyframes,
        "edges": alignment.edges,
        "edges_used": r.edges_used,
        "loss_initial": r.loss_initial,
        "loss_final": r.loss_final,
        "map_points": len(alignment.points),
        "depth_scales": dict(zip(names, alignment.depth_scales.tolist(), strict=True)),
    }
    (out / "alignment.json").write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
