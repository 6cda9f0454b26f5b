"""Shared fixtures for the napari-sam2v test suite."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


def make_disk_video(
    n_frames: int = 12,
    shape: tuple[int, int] = (96, 128),
    *,
    radius: float = 9.0,
    starts: tuple[tuple[float, float], ...] = ((30.0, 30.0), (70.0, 90.0)),
    velocity: tuple[tuple[float, float], ...] = ((0.0, 3.0), (0.0, -2.0)),
) -> tuple[np.ndarray, np.ndarray]:
    """Bright disks moving on a dark, slightly noisy background.

    Returns
    -------
    frames : ndarray (t, y, x) uint16
    labels : ndarray (t, y, x) uint16 ground truth (object ids 1..n)
    """
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    frames = np.empty((n_frames, *shape), np.uint16)
    labels = np.zeros((n_frames, *shape), np.uint16)
    for t in range(n_frames):
        img = rng.normal(1000, 20, shape)
        for oid, ((y0, x0), (vy, vx)) in enumerate(zip(starts, velocity, strict=True), start=1):
            cy, cx = y0 + vy * t, x0 + vx * t
            disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
            img[disk] = 3000 + rng.normal(0, 20, disk.sum())
            labels[t][disk] = oid
        frames[t] = np.clip(img, 0, 65535).astype(np.uint16)
    return frames, labels


@pytest.fixture
def disk_video() -> tuple[np.ndarray, np.ndarray]:
    """A 12-frame, two-object grayscale 16-bit video with ground truth."""
    return make_disk_video()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip GUI tests without a display (napari would abort the whole run).

    ``scripts/test.sh`` runs the suite under ``xvfb-run``, so CI always has one.
    """
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    skip = pytest.mark.skip(reason="needs a display: run under xvfb-run (scripts/test.sh)")
    for item in items:
        if "gui" in item.keywords:
            item.add_marker(skip)
