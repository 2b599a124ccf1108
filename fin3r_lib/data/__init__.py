"""Frames in: robot logs (bags), frame datasets, image folders and videos."""

from fin3r_lib.data.frame import Frame

__all__ = ["Frame"]
