"""The MASt3R model class: DUSt3R's pairwise model trained for metric point maps."""

from __future__ import annotations

from typing import ClassVar

from fin3r_lib.models.dust3r.model import DUSt3R


class MASt3R(DUSt3R):
    """MASt3R: trained for metric point maps (`relative_scale` False)."""

    relative_scale: ClassVar[bool] = False
