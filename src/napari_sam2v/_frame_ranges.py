"""Runs of frames: the ranges a partial store never tracked, as people read them."""

from __future__ import annotations

import numpy as np

__all__ = ["describe_ranges", "frame_ranges"]


def frame_ranges(mask: np.ndarray) -> list[list[int]]:
    """Inclusive ``[first, last]`` runs of the True entries of a 1-D bool array."""
    idx = np.flatnonzero(np.asarray(mask, dtype=bool))
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > 1)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]])
    return [[int(a), int(b)] for a, b in zip(starts, ends, strict=True)]


def describe_ranges(ranges: list[list[int]]) -> str:
    """``"3, 7-9"`` for ``[[3, 3], [7, 9]]``."""
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in ranges)
