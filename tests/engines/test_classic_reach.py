"""Geodesic reach limits of the classic engine (``max_reach``)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam2v.engines import create_engine
from napari_sam2v.engines.classic import ClassicEngine, ClassicSettings
from napari_sam2v.engines.classic.reach import (
    geodesic_ball,
    limit_reach_from_clicks,
    limit_reach_from_prediction,
)
from napari_sam2v.errors import EngineError
from napari_sam2v.prompts import Prompt


def band(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    out = np.zeros(shape, bool)
    out[rows, cols] = True
    return out


def test_geodesic_ball_follows_the_mask() -> None:
    # A U-shaped corridor: the far arm is close in a straight line, far along the mask.
    mask = np.zeros((30, 30), bool)
    mask[2:28, 2:6] = True
    mask[24:28, 2:28] = True
    mask[2:28, 24:28] = True
    sources = np.zeros_like(mask)
    sources[2, 3] = True
    ball = geodesic_ball(mask, sources, 20)
    assert ball[21, 3] and not ball[2, 25]
    assert not (ball & ~mask).any()
    assert geodesic_ball(mask, sources, 0).sum() == 1
    assert not geodesic_ball(mask, ~mask, 5).any()  # sources outside the mask


def test_click_limit_cuts_a_long_cluster_and_keeps_other_parts() -> None:
    mask = band((40, 200), slice(10, 30), slice(0, 200))  # half-width 10
    mask[35:39, 0:4] = True  # an unclicked fragment
    cut = limit_reach_from_clicks(mask, (np.array([20]), np.array([100])), factor=1.5, min_radius=4)
    cols = np.flatnonzero(cut[20])
    assert cols.min() >= 84 and cols.max() <= 116  # about 1.5 x half-width each way
    assert cut[35:39, 0:4].all()
    assert not (cut & ~mask).any()
    same = limit_reach_from_clicks(mask, (np.array([20]), np.array([100])), factor=0, min_radius=4)
    assert np.array_equal(same, mask)


def test_click_limit_snaps_a_click_beside_the_mask() -> None:
    mask = band((40, 200), slice(10, 30), slice(0, 200))
    cut = limit_reach_from_clicks(mask, (np.array([5]), np.array([100])), factor=1.5, min_radius=20)
    assert cut[20, 100] and not cut[20, 150]


def test_prediction_limit_bounds_growth() -> None:
    mask = band((40, 200), slice(10, 30), slice(0, 200))
    predicted = band((40, 200), slice(10, 30), slice(90, 110))
    grown = limit_reach_from_prediction(mask, predicted, radius=5)
    cols = np.flatnonzero(grown[20])
    assert cols.min() == 85 and cols.max() == 114
    away = band((40, 200), slice(0, 5), slice(0, 5))
    assert np.array_equal(limit_reach_from_prediction(mask, away, radius=5), mask)


def test_max_reach_is_validated_and_relaxes_texture_area_rule() -> None:
    with pytest.raises(EngineError, match="max_reach"):
        create_engine("classic", max_reach=-1.0)
    with pytest.raises(EngineError, match="max_reach"):
        create_engine("classic", max_reach=float("nan"))
    settings = ClassicSettings()
    assert settings.area_change_for("texture") == settings.max_area_change**2
    assert settings.area_change_for("bright") == settings.max_area_change
    assert ClassicSettings(max_reach=0).area_change_for("texture") == settings.max_area_change


def textured_row(n_frames: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Phase-contrast-like strip of touching cells: texture on a flat background."""
    rng = np.random.default_rng(3)
    shape = (96, 256)
    truth = band(shape, slice(36, 60), slice(8, 248))
    frames = np.empty((n_frames, *shape), np.uint16)
    for t in range(n_frames):
        img = rng.normal(20000, 150, shape)
        img[truth] = 20000 + rng.normal(0, 4000, truth.sum())
        frames[t] = img.astype(np.uint16)
    return frames, truth


def test_engine_does_not_spread_over_a_cluster() -> None:
    frames, truth = textured_row()
    prompt = Prompt(0, 1, points=[[128, 48]])
    limited = ClassicEngine(feature="texture")
    limited.set_video(frames)
    limited.add_prompts([prompt])
    results = list(limited.propagate())
    free = ClassicEngine(feature="texture", max_reach=0, split_clusters=0)
    free.set_video(frames)
    free.add_prompts([prompt])
    free_results = list(free.propagate())
    assert free_results[0].masks[1][truth].mean() > 0.9  # the whole strip
    first = results[0].masks[1]
    assert first[48, 128] and 0.1 < first[truth].mean() < 0.5
    for result in results[1:]:
        mask = result.masks[1]
        # Present and still around the click; it grows by at most the reach
        # (min_margin = 8 px, plus twice its centroid speed) on each side per frame,
        # so it never takes the whole strip as the unlimited engine does at once.
        assert mask[48, 128]
        assert mask[truth].mean() < 0.6
        assert mask.sum() <= first.sum() + 2 * 12 * 24 * result.frame
