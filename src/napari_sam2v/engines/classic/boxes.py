"""Seeding an object from a box prompt (with or without clicks) for the classic engine.

The box bounds the object: candidate masks are clipped to it and must agree with
it, and the ``phase`` watershed (:mod:`.phase`) closes in from its edges. See
:func:`seed_box`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from napari_sam2v.engines.classic.features import Appearance, FrameView
from napari_sam2v.engines.classic.geometry import CropMask, Window
from napari_sam2v.engines.classic.phase import halo_elevation, has_halo, segment_from_clicks
from napari_sam2v.engines.classic.seeding import (
    Seed,
    candidate_features,
    empty_seed,
    exclude_negatives,
    points_in_window,
    segment_window,
)
from napari_sam2v.engines.classic.settings import ClassicSettings
from napari_sam2v.prompts import Prompt

__all__ = ["seed_box"]

#: Smallest fraction of a prompt box that a candidate mask must cover.
_MIN_BOX_FILL = 0.2


def _box_agreement(mask: np.ndarray, box_mask: np.ndarray) -> float:
    """IoU of the mask's bounding box with the prompt box."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    brows, bcols = np.flatnonzero(box_mask.any(axis=1)), np.flatnonzero(box_mask.any(axis=0))
    inter_r = min(rows[-1], brows[-1]) - max(rows[0], brows[0]) + 1
    inter_c = min(cols[-1], bcols[-1]) - max(cols[0], bcols[0]) + 1
    inter = max(inter_r, 0) * max(inter_c, 0)
    area = (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)
    barea = (brows[-1] - brows[0] + 1) * (bcols[-1] - bcols[0] + 1)
    return inter / float(area + barea - inter)


def seed_box(view: FrameView, prompt: Prompt, settings: ClassicSettings) -> Seed:
    """Segment the object of a box prompt (with or without clicks) on ``view``.

    Each candidate feature is thresholded in a window around the box; the
    components holding the positive clicks (or lying mostly inside the box) are
    clipped to the box, and a candidate must agree with the box (bounding-box IoU
    >= 0.3) and fill at least a fifth of it. For ``phase``, the halo watershed runs
    with the box as its bound; it is also the answer when no thresholded candidate
    fits the box. The best Otsu separability wins.
    """
    assert prompt.box is not None  # seed_from_prompt sends box prompts here
    bx0, by0, bx1, by1 = prompt.box
    margin = max(4.0, 0.25 * max(bx1 - bx0, by1 - by0))
    window = Window.around(by0, bx0, by1 - 1, bx1 - 1, margin=margin, shape=view.shape)
    box_mask = np.zeros(window.shape, bool)
    r0, c0 = int(np.floor(by0)) - window.y0, int(np.floor(bx0)) - window.x0
    r1, c1 = int(np.ceil(by1)) - window.y0, int(np.ceil(bx1)) - window.x0
    box_mask[max(r0, 0) : r1, max(c0, 0) : c1] = True
    pts, lbl = prompt.clicks
    pos_rc = points_in_window(window, pts[lbl == 1])
    neg_rc = points_in_window(window, pts[lbl == 0])
    core = np.zeros(window.shape, bool)
    hr, hc = max((r1 - r0) // 4, 1), max((c1 - c0) // 4, 1)
    core[max(r0 + hr, 0) : r1 - hr, max(c0 + hc, 0) : c1 - hc] = True
    core[pos_rc] = True
    best: Seed | None = None
    fallback: Seed | None = None
    for feature in candidate_features(view, window, core, settings):
        labels, _, appearance, sep = segment_window(view, window, feature, settings)
        if feature == "phase":
            elevation = halo_elevation(view, window, sigma=settings.halo_sigma)
            inside = (labels > 0) & box_mask
            marker = _box_marker(inside, pos_rc)
            halo = inside.any() and (
                settings.feature == "phase"
                or has_halo(inside, elevation, marker, background_gap=settings.texture_size)
            )
            mask = _phase_in_box(inside, elevation, box_mask, marker, neg_rc, settings)
            if halo:
                if mask.any() and (best is None or sep > best.quality):
                    best = Seed(CropMask.from_window(window, mask), appearance, sep)
                continue
            # no halo: plain texture, unless no candidate agrees with the box
            fallback = Seed(CropMask.from_window(window, mask), appearance, 0.0)
            feature = "texture"
            appearance = Appearance(feature, appearance.threshold)
        if len(pos_rc[0]):
            hit = np.unique(labels[pos_rc])
            hit = hit[hit > 0]
        else:
            counts = np.bincount(labels.ravel(), minlength=labels.max() + 1)
            in_box = np.bincount(labels[box_mask], minlength=labels.max() + 1)
            frac = np.divide(in_box, counts, out=np.zeros(len(counts)), where=counts > 0)
            hit = np.flatnonzero(frac >= 0.5)
            hit = hit[hit > 0]
        mask = exclude_negatives(labels, np.isin(labels, hit), pos_rc, neg_rc) & box_mask
        if not mask.any():
            continue
        if _box_agreement(mask, box_mask) < 0.3 or mask.sum() < _MIN_BOX_FILL * box_mask.sum():
            continue  # not the boxed object (e.g. a few dark granules spread over it)
        if best is None or sep > best.quality:
            best = Seed(CropMask.from_window(window, mask), appearance, sep)
    if best is None and fallback is not None and fallback.mask is not None:
        # nothing fits the box by thresholding: the watershed bounded by the box does
        return fallback
    return best if best is not None else empty_seed(view, window, core, settings)


def _box_marker(
    inside: np.ndarray, pos_rc: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The positive clicks, or else the deepest textured pixel of the box."""
    if len(pos_rc[0]) or not inside.any():
        return pos_rc
    row, col = np.unravel_index(np.argmax(ndi.distance_transform_edt(inside)), inside.shape)
    return np.array([row]), np.array([col])


def _phase_in_box(
    inside: np.ndarray,
    elevation: np.ndarray,
    box_mask: np.ndarray,
    marker: tuple[np.ndarray, np.ndarray],
    neg_rc: tuple[np.ndarray, np.ndarray],
    settings: ClassicSettings,
) -> np.ndarray:
    """The ``phase`` watershed of a box prompt: the box bounds the cell.

    ``inside`` is the textured foreground within the box; the background marker
    lies just outside the box, so the outline follows the halo ridge between the
    cell's marker (a click, or the deepest textured pixel) and the box edges.
    """
    if not inside.any():
        return inside
    mask = segment_from_clicks(
        inside,
        elevation,
        marker,
        neg_rc,
        marker_scale=settings.marker_scale,
        background_gap=settings.texture_size,
        snap=settings.initial_window / 8,
        bound=box_mask,
    )
    return mask & box_mask
