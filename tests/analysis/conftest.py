"""Helpers for the analysis tests: a fake store ``Result`` and small label videos."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_sam2v.types import Calibration, ObjectInfo


@dataclass
class FakeResult:
    """Duck-typed stand-in for ``store.Result`` (the attributes ``measure`` reads)."""

    labels: object
    calibration: Calibration = field(default_factory=Calibration)
    objects: list[ObjectInfo] = field(default_factory=list)
    scores: pd.DataFrame | None = None
    path: Path = Path("/data/fake.zarr")
    frames_done: np.ndarray | None = None


def moving_labels(
    n_frames: int = 10,
    shape: tuple[int, int] = (64, 80),
    *,
    absent: dict[int, set[int]] | None = None,
) -> np.ndarray:
    """Two rectangles moving at known speeds; ``absent[id]`` lists frames without it."""
    absent = absent or {}
    labels = np.zeros((n_frames, *shape), np.uint16)
    for t in range(n_frames):
        if t not in absent.get(1, set()):
            labels[t, 10:16, 5 + 2 * t : 12 + 2 * t] = 1  # 6 x 7, moves +2 px/frame in x
        if t not in absent.get(2, set()):
            y0 = 40 - t
            labels[t, y0 : y0 + 5 + t // 3, 50:58] = 2  # moves -1 px/frame in y, grows
    return labels


@pytest.fixture
def labels_with_gap() -> np.ndarray:
    """Object 1 absent on frames 3 and 4; object 2 always present."""
    return moving_labels(absent={1: {3, 4}})
