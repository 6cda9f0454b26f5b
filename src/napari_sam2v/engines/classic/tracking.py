"""One propagation step of one object: find it on the next frame, or declare it absent.

The previous mask is shifted by the object's recent (damped) displacement. The
next frame is segmented with the object's learned feature and threshold inside a
search window around that prediction, and the object becomes the union of the
components that overlap the prediction (the one with the largest overlap, plus
fragments lying mostly inside it). When the result is much larger than the
object was, it is usually glued to a neighbour: a marker watershed seeded by the
prediction splits it. For the texture feature, the selection is also limited to
the pixels within a geodesic reach of the prediction (see :mod:`.reach`). The
object is declared absent (empty mask, negative logit) when the overlap with the
prediction is too low or the area jumps too much (for texture with the reach
limit on: ``max_area_change ** 2``). The ``phase`` feature replaces the component
selection by a marker watershed of the grey image seeded by the core of the
prediction, the other tracked objects' predictions, untracked textured
neighbours and the background (see :mod:`.phase`); a lost ``phase`` object is
searched for from its last seen mask, unshifted, in the grown window.
An object at the frame's edge with less than ``exit_fraction`` of its whole
area (see :meth:`TrackState.left_view`) has left the field of view and is
declared absent too. While absent, the last seen mask is searched for near its
last position, in a window that grows with the gap, and the object is re-found
when a component of a similar area appears there.

The confidence logit is ``logit(iou) - logit(min_overlap)`` where ``iou`` is the
overlap of the new mask with the motion-shifted previous mask (for a re-found
object: with the last seen mask moved onto it), minus a penalty for an area ratio
outside ``[1 / max_area_change, max_area_change]``; it is positive exactly when the
object is reported present.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from napari_sam2v.engines.base import ObjectScore
from napari_sam2v.engines.classic.features import Appearance, FrameView, binarize, feature_map
from napari_sam2v.engines.classic.geometry import CropMask, Window
from napari_sam2v.engines.classic.phase import halo_elevation, segment_from_prediction
from napari_sam2v.engines.classic.reach import limit_reach_from_prediction
from napari_sam2v.engines.classic.seeding import auto_threshold
from napari_sam2v.engines.classic.settings import ClassicSettings

__all__ = ["ABSENT_LOGIT", "TrackState", "confidence_logit", "track_step"]

#: A mask within this many pixels of the frame's edge is at the edge (smoothing and
#: opening often keep a cut-off object's mask a pixel or two off the last row).
_EDGE_MARGIN = 3
#: Logit reported for an object with nothing to track from.
ABSENT_LOGIT = -10.0
_MAX_LOGIT = 10.0


@dataclass
class TrackState:
    """What the tracker remembers about one object during a propagation pass.

    Parameters
    ----------
    last_seen : CropMask
        Last mask on which the object was present.
    appearance : Appearance
        Feature and threshold learned from the object's latest prompt.
    velocity : ndarray
        ``(dy, dx)`` displacement between the last two present frames.
    gap : int
        Frames since ``last_seen`` (1 on the next frame).
    whole_area : float
        Area of the object when last seen clear of the frame's edge (or the largest
        area seen at the edge since); 0 takes ``last_seen``'s area.
    """

    last_seen: CropMask
    appearance: Appearance
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    gap: int = 1
    whole_area: float = 0.0

    def __post_init__(self) -> None:
        if self.whole_area <= 0:
            self.whole_area = float(self.last_seen.area)

    def left_view(self, crop: CropMask, frame_shape: tuple[int, int], fraction: float) -> bool:
        """Whether ``crop`` is a sliver of the object leaving the frame; updates the whole area.

        Parameters
        ----------
        crop : CropMask
            The object's mask found on the current frame.
        frame_shape : tuple of int
            ``(height, width)`` of the frame.
        fraction : float
            ``exit_fraction`` of the settings (0: never).

        Returns
        -------
        bool
            ``True`` when ``crop`` reaches the frame's edge with less than
            ``fraction`` of the object's whole area.
        """
        area = float(crop.area)
        if not crop.near_frame_edge(frame_shape, _EDGE_MARGIN):
            self.whole_area = area
            return False
        if fraction > 0 and area < fraction * self.whole_area:
            return True
        self.whole_area = max(self.whole_area, area)
        return False


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1.0 - 1e-6)
    return math.log(p / (1.0 - p))


def confidence_logit(
    iou: float,
    area_ratio: float,
    settings: ClassicSettings,
    *,
    max_area_change: float | None = None,
) -> float:
    """Presence logit from the overlap with the prediction and the area change.

    Parameters
    ----------
    iou : float
        Overlap (IoU) of the new mask with the predicted mask.
    area_ratio : float
        New area over previous area.
    settings : ClassicSettings
        Provides ``min_overlap`` and ``max_area_change``.
    max_area_change : float, optional
        Overrides ``settings.max_area_change`` (see
        :meth:`~.settings.ClassicSettings.area_change_for`).

    Returns
    -------
    float
        Positive when the object is consistent with its past, clipped to ``[-10, 10]``.
    """
    logit = _logit(iou) - _logit(settings.min_overlap)
    limit = settings.max_area_change if max_area_change is None else max_area_change
    excess = abs(math.log(max(area_ratio, 1e-9))) - math.log(limit)
    if excess > 0:
        logit = min(logit, 0.0) - 1.0 - 10.0 * excess
    return float(np.clip(logit, -_MAX_LOGIT, _MAX_LOGIT))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 0.0


def _split_from_neighbours(mask: np.ndarray, predicted: np.ndarray, band: int) -> np.ndarray:
    """Keep the part of ``mask`` that a watershed assigns to the prediction."""
    core = ndi.binary_erosion(predicted & mask, iterations=max(1, band // 2))
    if not core.any():
        core = predicted & mask
    far = mask & ~ndi.binary_dilation(predicted, iterations=band)
    if not far.any() or not core.any():
        return mask
    markers = np.zeros(mask.shape, np.int32)
    markers[far] = 2
    markers[core] = 1
    distance = ndi.distance_transform_edt(mask)
    return watershed(-distance, markers, mask=mask) == 1


def _keep_predicted_basins(mask: np.ndarray, predicted: np.ndarray, depth: float) -> np.ndarray:
    """Cut a blob at distance-transform maxima; keep the basins mostly inside the prediction."""
    distance = ndi.distance_transform_edt(mask)
    markers, n = ndi.label(h_maxima(distance, depth) > 0)
    if n < 2:
        return mask
    basins = watershed(-distance, markers, mask=mask)
    areas = np.bincount(basins.ravel(), minlength=n + 1)
    inside = np.bincount(basins[predicted], minlength=n + 1)
    keep = inside >= 0.5 * np.maximum(areas, 1)
    keep[int(np.argmax(inside[1:])) + 1] = True
    keep[0] = False
    return keep[basins]


def _search_window(
    reference: CropMask, shift: np.ndarray, margin: float, shape: tuple[int, int]
) -> Window:
    return Window.around(
        reference.y0 + shift[0],
        reference.x0 + shift[1],
        reference.y1 - 1 + shift[0],
        reference.x1 - 1 + shift[1],
        margin=margin,
        shape=shape,
    )


def track_step(
    view: FrameView,
    state: TrackState,
    settings: ClassicSettings,
    *,
    others: Sequence[CropMask] = (),
) -> tuple[CropMask | None, ObjectScore]:
    """Find the object of ``state`` on ``view``.

    Parameters
    ----------
    view : FrameView
        The frame to segment.
    state : TrackState
        The object's memory; updated in place (last seen mask, velocity, gap).
    settings : ClassicSettings
        Engine options.
    others : sequence of CropMask, optional
        Predicted masks of the other tracked objects on this frame; the ``phase``
        feature gives each its own watershed marker.

    Returns
    -------
    mask : CropMask or None
        The object, or ``None`` when it is absent.
    score : ObjectScore
        Presence logit and overlap with the prediction.
    """
    ref = state.last_seen
    lost = state.gap > 1
    shift = np.zeros(2) if lost else state.velocity * settings.motion_damping
    speed = float(np.hypot(*state.velocity))
    margin = max(settings.min_margin, settings.search_margin * ref.size, 2.0 * speed)
    if lost:
        margin *= min(1.0 + 0.5 * (state.gap - 1), 4.0)
    window = _search_window(ref, shift, margin, view.shape)
    app = state.appearance
    values = feature_map(
        view,
        window,
        app.feature,
        sigma=settings.sigma,
        texture_size=settings.texture_size,
        background=app.background,
        model=app.model,
    )
    threshold = app.threshold
    if settings.adapt_threshold > 0 and settings.threshold is None and app.model is None:
        local = auto_threshold(values, app.feature)
        # Never let a window full of object (or of background) move the threshold far.
        low, high = sorted((0.5 * threshold, 1.5 * threshold))
        if low <= local <= high or threshold == 0:
            threshold = (
                1 - settings.adapt_threshold
            ) * threshold + settings.adapt_threshold * local
    binary = binarize(
        values,
        threshold,
        closing_radius=settings.closing_for(app.feature),
        opening_radius=settings.opening_radius,
    )
    predicted = ref.shifted(*shift).in_window(window)
    ref_area = float(ref.area)
    area_limit = settings.area_change_for(app.feature)
    if app.feature == "phase":
        mask = segment_from_prediction(
            binary,
            halo_elevation(view, window, sigma=settings.halo_sigma),
            predicted,
            [other.in_window(window) for other in others],
            background_gap=settings.texture_size,
            neighbour_gap=max(settings.min_margin, _half_width(predicted)),
        )
        return _finish(state, window, mask, predicted, settings, area_limit, view.shape)
    labels, n = ndi.label(binary)
    selected = _select(labels, n, predicted, ref_area, lost, area_limit)
    if selected is None:
        state.gap += 1
        return None, ObjectScore(ABSENT_LOGIT if lost else -1.0, 0.0)
    mask = selected
    if app.feature == "texture" and settings.split_clusters > 0 and not lost:
        mask = _keep_predicted_basins(mask, predicted, settings.split_clusters)
    if app.feature == "texture" and settings.max_reach > 0 and not lost:
        reach = max(float(settings.min_margin), 2.0 * speed)
        mask = limit_reach_from_prediction(mask, predicted, radius=reach)
    band = max(2, int(round(margin / 2)))
    if settings.split_touching and mask.sum() > area_limit * ref_area and not lost:
        mask = _split_from_neighbours(mask, predicted, band)
    if lost:
        aligned = _aligned(ref, mask, window)
        iou = _iou(mask, aligned)
    else:
        iou = _iou(mask, predicted)
    area_ratio = float(mask.sum()) / max(ref_area, 1.0)
    logit = confidence_logit(iou, area_ratio, settings, max_area_change=area_limit)
    if logit <= 0:
        state.gap += 1
        return None, ObjectScore(logit, iou)
    crop = CropMask.from_window(window, mask)
    if crop is None:
        state.gap += 1
        return None, ObjectScore(ABSENT_LOGIT, 0.0)
    return _accept(state, crop, ObjectScore(logit, iou), view.shape, settings)


def _half_width(mask: np.ndarray) -> int:
    """Largest distance from a pixel of ``mask`` to its outside, rounded."""
    if not mask.any():
        return 0
    return int(round(float(ndi.distance_transform_edt(np.pad(mask, 1)).max())))


def _finish(
    state: TrackState,
    window: Window,
    mask: np.ndarray,
    predicted: np.ndarray,
    settings: ClassicSettings,
    area_limit: float,
    frame_shape: tuple[int, int],
) -> tuple[CropMask | None, ObjectScore]:
    """Score ``mask`` against the prediction and update ``state`` (present or absent)."""
    ref = state.last_seen
    iou = _iou(mask, predicted)
    area_ratio = float(mask.sum()) / max(float(ref.area), 1.0)
    logit = confidence_logit(iou, area_ratio, settings, max_area_change=area_limit)
    crop = CropMask.from_window(window, mask) if logit > 0 else None
    if crop is None:
        state.gap += 1
        return None, ObjectScore(min(logit, -1.0), iou)
    return _accept(state, crop, ObjectScore(logit, iou), frame_shape, settings)


def _accept(
    state: TrackState,
    crop: CropMask,
    score: ObjectScore,
    frame_shape: tuple[int, int],
    settings: ClassicSettings,
) -> tuple[CropMask | None, ObjectScore]:
    """Make ``crop`` the object's new mask, unless it is a sliver leaving the frame."""
    if state.left_view(crop, frame_shape, settings.exit_fraction):
        state.gap += 1
        return None, ObjectScore(min(score.object_score_logit, -1.0), score.iou)
    # motion is only known between consecutive present frames
    state.velocity = crop.centroid - state.last_seen.centroid if state.gap == 1 else np.zeros(2)
    state.last_seen = crop
    state.gap = 1
    return crop, score


def _select(
    labels: np.ndarray,
    n: int,
    predicted: np.ndarray,
    ref_area: float,
    lost: bool,
    area_limit: float,
) -> np.ndarray | None:
    """Components belonging to the object, as a window-sized mask (``None``: none)."""
    if n == 0:
        return None
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    overlap = np.bincount(labels[predicted], minlength=n + 1)
    areas[0] = 0
    overlap[0] = 0
    if lost:
        # Re-finding: the component of the most similar area near the last position.
        ratio = areas[1:] / max(ref_area, 1.0)
        ok = np.flatnonzero((ratio >= 1.0 / area_limit) & (ratio <= area_limit))
        if ok.size == 0:
            return None
        best = int(ok[np.argmin(np.abs(np.log(ratio[ok])))]) + 1
        return labels == best
    if overlap.max() == 0:
        return None
    best = int(np.argmax(overlap))
    inside = np.divide(overlap, areas, out=np.zeros(n + 1), where=areas > 0)
    chosen = np.flatnonzero(inside >= 0.5)
    lut = np.zeros(n + 1, dtype=bool)
    lut[chosen] = True
    lut[best] = True
    lut[0] = False
    return lut[labels]


def _aligned(ref: CropMask, mask: np.ndarray, window: Window) -> np.ndarray:
    """The last seen mask moved so that its centroid lies on ``mask``'s centroid."""
    ys, xs = np.nonzero(mask)
    target = np.array([ys.mean() + window.y0, xs.mean() + window.x0])
    dy, dx = target - ref.centroid
    return ref.shifted(dy, dx).in_window(window)
