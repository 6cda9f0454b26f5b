"""The classic engine's ``phase`` feature: halo-bounded watershed of phase-contrast cells."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_sam2v.engines import create_engine
from napari_sam2v.engines.classic import ClassicEngine, ClassicSettings
from napari_sam2v.engines.classic.phase import (
    has_halo,
    prediction_core,
    segment_from_clicks,
    segment_from_prediction,
)
from napari_sam2v.errors import EngineError
from napari_sam2v.prompts import Prompt

SHAPE = (128, 176)
#: (row, col, radius) of three cells on frame 0: 1 and 2 touch, 3 touches 1 (nobody clicks 3).
CELLS = {1: (64.0, 60.0, 22.0), 2: (64.0, 96.0, 21.0), 3: (25.0, 45.0, 15.0)}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


def ellipse(shape: tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy - cy) / (0.85 * r)) ** 2 + ((xx - cx) / r) ** 2 <= 1.0


def phase_cells(
    n_frames: int = 5, *, halo: bool = True, seam: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Phase-contrast-like frames: touching cells with bright halo rims and dark granules.

    The cell bodies have the grey of the medium; only their granules (texture) and
    the bright halo along every outline (also along the seam of touching cells,
    unless ``seam`` is false) tell them apart. Cells 1 and 2 drift right by 1 px
    per frame.
    """
    rng = np.random.default_rng(11)
    labels = np.zeros((n_frames, *SHAPE), np.uint8)
    frames = np.empty((n_frames, *SHAPE), np.uint16)
    for t in range(n_frames):
        img = 0.40 + rng.normal(0, 0.008, SHAPE)
        for oid, (cy, cx, r) in CELLS.items():
            shift = t if oid in (1, 2) else 0
            cell = ellipse(SHAPE, cy, cx + shift, r) & (labels[t] == 0)
            labels[t][cell] = oid
        cells = labels[t] > 0
        granules = ndi.gaussian_filter(rng.normal(0, 1, SHAPE), 1.0) > 0.35
        img[cells & granules] -= 0.18
        img[cells] += rng.normal(0, 0.03, cells.sum())
        if halo:
            outline = cells & ~ndi.binary_erosion(cells, iterations=2)
            if seam:
                edges = labels[t] != ndi.grey_erosion(labels[t], 3)
                outline |= ndi.binary_dilation(edges, iterations=1)
            img[ndi.binary_dilation(outline, iterations=1)] += 0.12
        frames[t] = np.clip(ndi.gaussian_filter(img, 0.7) * 40000, 0, 65535).astype(np.uint16)
    return frames, labels


def click(oid: int, frame: int = 0) -> list[list[float]]:
    cy, cx, _ = CELLS[oid]
    return [[cx + (frame if oid in (1, 2) else 0), cy]]


def test_phase_options_are_validated_and_recorded() -> None:
    assert "phase" in ClassicEngine(feature="phase").info.settings.values()
    for name, value in (
        ("halo_sigma", -1.0),
        ("halo_sigma", float("nan")),
        ("marker_scale", 0.0),
        ("marker_scale", 1.5),
    ):
        with pytest.raises(EngineError, match=name):
            create_engine("classic", **{name: value})
    assert ClassicSettings().closing_for("phase") == ClassicSettings().texture_size // 2


def test_auto_picks_phase_for_haloed_cells_and_separates_touching_ones() -> None:
    frames, labels = phase_cells()
    engine = ClassicEngine()
    engine.set_video(frames)
    engine.add_prompts([Prompt(0, 1, points=click(1)), Prompt(0, 2, points=click(2))])
    assert engine._seeds[1][0].appearance.feature == "phase"
    results = {r.frame: r for r in engine.propagate()}
    assert sorted(results) == list(range(len(frames)))
    for t, result in results.items():
        for oid in (1, 2):
            mask = result.masks[oid]
            assert iou(mask, labels[t] == oid) > 0.75, (t, oid)
            assert result.scores[oid].present
        # The touching, unclicked neighbour is never absorbed.
        assert result.masks[1][labels[t] == 3].mean() < 0.1, t
        shared = np.count_nonzero(result.masks[1] & result.masks[2])
        if t == 0:  # two prompts' answers: segmented in their own windows
            assert shared < 0.02 * min(result.masks[1].sum(), result.masks[2].sum())
        else:  # tracked objects never share pixels
            assert shared == 0, t


def test_phase_beats_texture_on_touching_cells() -> None:
    frames, labels = phase_cells(n_frames=1)
    scores = {}
    for feature in ("phase", "texture"):
        engine = ClassicEngine(feature=feature)
        engine.set_video(frames)
        mask = engine.add_prompt(Prompt(0, 1, points=click(1))).masks[1]
        scores[feature] = iou(mask, labels[0] == 1)
    assert scores["phase"] > 0.8
    assert scores["phase"] > scores["texture"] + 0.1


def test_later_click_reseeds_a_neighbour_that_flooded_it() -> None:
    frames, labels = phase_cells(n_frames=1, seam=False)
    engine = ClassicEngine(feature="phase")
    engine.set_video(frames)
    # Cell 1 alone: no halo separates it from cell 2, so its flood takes cell 2 too.
    alone = engine.add_prompt(Prompt(0, 1, points=click(1))).masks[1]
    assert alone[labels[0] == 2].mean() > 0.5
    result = engine.add_prompt(Prompt(0, 2, points=click(2)))
    ((x, y),) = click(2)
    assert not result.masks[1][int(y), int(x)]
    assert result.masks[1][labels[0] == 2].mean() < 0.1
    assert iou(result.masks[1], labels[0] == 1) > 0.8
    assert iou(result.masks[2], labels[0] == 2) > 0.8


def test_cell_clicked_among_tracked_cells_does_not_flood_them() -> None:
    """A cell first clicked on a later frame (a daughter after a division, say).

    No halo seam separates cells 1 and 2, so cell 1 clicked alone floods cell 2.
    When cell 2 is tracked through that frame, its mask is cell 1's neighbour
    marker: at the click (from the stored propagation) and when propagating.
    """
    frames, labels = phase_cells(n_frames=5, seam=False)
    later = 3
    alone = ClassicEngine(feature="phase")
    alone.set_video(frames)
    flooded = alone.add_prompt(Prompt(later, 1, points=click(1, later))).masks[1]
    assert flooded[labels[later] == 2].mean() > 0.5  # the test can fail

    # Interactive: cell 2 (drawn on frame 0) propagated first, then cell 1 clicked.
    engine = ClassicEngine(feature="phase")
    engine.set_video(frames)
    engine.add_prompt(Prompt(0, 2, mask=labels[0] == 2))
    tracked = {r.frame: r.masks[2] for r in engine.propagate()}
    # Without a seam the tracked cell loses part of itself, but never floods cell 1.
    assert iou(tracked[later], labels[later] == 2) > 0.5
    assert tracked[later][labels[later] == 1].mean() < 0.02
    seeded = engine.add_prompt(Prompt(later, 1, points=click(1, later))).masks[1]
    assert seeded[labels[later] == 2].mean() < 0.1
    assert iou(seeded, labels[later] == 1) > 0.8

    # Both prompts given first: cell 1 is seeded again among this pass's tracked masks.
    engine.reset()
    engine.add_prompts(
        [Prompt(0, 2, mask=labels[0] == 2), Prompt(later, 1, points=click(1, later))]
    )
    results = {r.frame: r for r in engine.propagate()}
    for t in range(later, len(frames)):
        assert iou(results[t].masks[1], labels[t] == 1) > 0.8, t
        assert results[t].masks[1][labels[t] == 2].mean() < 0.2, t
        # (before tracked masks became markers: 0.0, cell 1's seed took it all)
        assert iou(results[t].masks[2], labels[t] == 2) > 0.4, t
    assert not results[later - 1].masks[1].any()


@pytest.mark.parametrize(
    ("feature", "box", "computed"),
    [
        ("phase", False, True),
        ("auto", False, True),
        ("bright", False, False),
        ("auto", True, False),
    ],
)
def test_tracked_markers_computed_only_for_seeds_that_can_use_them(
    feature: str, box: bool, computed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a click seed that may be ``phase`` looks up the tracked cells' marker points."""
    frames, labels = phase_cells(n_frames=3)
    engine = ClassicEngine(feature=feature)
    engine.set_video(frames)
    engine.add_prompt(Prompt(0, 2, mask=labels[0] == 2))
    list(engine.propagate())
    calls: list[int] = []
    lookup = ClassicEngine._neighbour_points

    def counted(self: ClassicEngine, frame: int, prompt: Prompt) -> np.ndarray:
        calls.append(frame)
        return lookup(self, frame, prompt)

    monkeypatch.setattr(ClassicEngine, "_neighbour_points", counted)
    prompt = Prompt(2, 1, points=click(1, 2), box=box_of(1) if box else None)
    assert engine.add_prompt(prompt).masks[1].any()
    assert bool(calls) is computed


def test_negative_click_and_flat_background() -> None:
    frames, labels = phase_cells(n_frames=1)
    engine = ClassicEngine(feature="phase")
    engine.set_video(frames)
    (x1, y1), (x2, y2) = click(1)[0], click(2)[0]
    both = engine.add_prompt(Prompt(0, 1, points=[[x1, y1], [x2, y2]], labels=[1, 0]))
    assert both.masks[1][labels[0] == 2].mean() < 0.1
    assert iou(both.masks[1], labels[0] == 1) > 0.75
    empty = engine.add_prompt(Prompt(0, 5, points=[[160, 118]]))  # flat medium
    assert not empty.masks[5].any()
    assert not empty.scores[5].present


def test_halo_test_tells_phase_contrast_from_plain_texture() -> None:
    for halo in (True, False):
        frames, labels = phase_cells(n_frames=1, halo=halo)
        engine = ClassicEngine()
        engine.set_video(frames)
        engine.add_prompt(Prompt(0, 1, points=click(1)))
        expected = "phase" if halo else "texture"
        assert engine._seeds[1][0].appearance.feature == expected


def test_phase_functions_on_a_drawn_window() -> None:
    shape = (60, 90)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    left = ((yy - 30) ** 2 + (xx - 28) ** 2 <= 15**2) | (
        ((yy - 30) ** 2 + (xx - 56) ** 2 <= 15**2) & (xx <= 43)
    )  # two overlapping disks cut at the seam x = 43
    right = ((yy - 30) ** 2 + (xx - 56) ** 2 <= 15**2) & (xx > 43)
    foreground = left | right
    # Halo: a bright ridge (Gaussian profile, 2 px wide) on the outline and on the seam.
    outline = foreground & ~ndi.binary_erosion(foreground)
    outline |= foreground & (xx == 43)
    distance = ndi.distance_transform_edt(~outline)
    elevation = np.where(foreground, 0.3, 0.4) + 0.5 * np.exp(-(distance**2) / 8.0)
    elevation = elevation.astype(np.float32)
    none = (np.zeros(0, int), np.zeros(0, int))
    click, other = (np.array([30]), np.array([28])), (np.array([30]), np.array([58]))
    options = {"marker_scale": 0.8, "background_gap": 4, "snap": 3}
    mask = segment_from_clicks(foreground, elevation, click, none, other, **options)
    assert mask[30, 28] and not mask[30, 58]
    assert iou(mask, left) > 0.85
    # Without the other click, nothing stops the flood at the seam's low end.
    alone = segment_from_clicks(foreground, elevation, click, none, **options)
    assert alone.sum() >= mask.sum()
    negative = segment_from_clicks(foreground, elevation, click, other, **options)
    assert not negative[30, 58] and iou(negative, left) > 0.85
    assert not segment_from_clicks(foreground, elevation, none, none, **options).any()
    # Tracking: the prediction's core seeds the object, the other object's its own basin.
    moved = np.roll(left, 2, axis=1)
    tracked = segment_from_prediction(
        foreground, elevation, moved, [right], background_gap=4, neighbour_gap=8
    )
    assert iou(tracked, left) > 0.85 and not tracked[30, 58]
    core = prediction_core(left)
    assert core.any() and core.sum() < left.sum() / 2 and not (core & ~left).any()
    off = segment_from_prediction(
        foreground, elevation, (yy < 3) & (xx < 3), (), background_gap=4, neighbour_gap=8
    )
    assert not off.any()  # a prediction lying on clear background finds nothing
    assert has_halo(foreground, elevation, (np.array([30]), np.array([28])), background_gap=4)
    flat = np.where(foreground, 0.4, 0.4).astype(np.float32)
    flat[foreground] += np.random.default_rng(0).normal(0, 0.05, foreground.sum())
    assert not has_halo(foreground, flat, (np.array([30]), np.array([28])), background_gap=4)


def box_of(oid: int, pad: float = 2.0) -> list[float]:
    cy, cx, r = CELLS[oid]
    return [cx - r - pad, cy - 0.85 * r - pad, cx + r + pad, cy + 0.85 * r + pad]


@pytest.mark.parametrize("with_click", [False, True])
def test_box_bounds_the_phase_watershed(with_click: bool) -> None:
    # no halo on the seam: a click alone floods cell 2 (see the re-seeding test)
    frames, labels = phase_cells(n_frames=1, seam=False)
    engine = ClassicEngine()
    engine.set_video(frames)
    points = {"points": click(1)} if with_click else {}
    mask = engine.add_prompt(Prompt(0, 1, box=box_of(1), **points)).masks[1]
    assert engine._seeds[1][0].appearance.feature == "phase"
    assert iou(mask, labels[0] == 1) > 0.8
    assert mask[labels[0] == 2].mean() < 0.1
    x0, y0, x1, y1 = box_of(1)
    rows, cols = np.nonzero(mask)
    assert rows.min() >= y0 - 1 and rows.max() <= y1 + 1
    assert cols.min() >= x0 - 1 and cols.max() <= x1 + 1


def test_box_on_cells_without_halo_still_gives_the_boxed_cell() -> None:
    frames, labels = phase_cells(n_frames=1, halo=False)
    engine = ClassicEngine()
    engine.set_video(frames)
    mask = engine.add_prompt(Prompt(0, 1, box=box_of(1))).masks[1]
    assert iou(mask, labels[0] == 1) > 0.6
    assert mask[labels[0] == 2].mean() < 0.2
