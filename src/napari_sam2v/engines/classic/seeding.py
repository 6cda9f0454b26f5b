"""Segment an object from a prompt (clicks, box, box + clicks or mask) on one frame.

The method, for every candidate feature (see :mod:`.features`):

1. a window around the prompt (clicks: a square that doubles while the object
   touches its edge; box: the box plus a margin; mask: its bounding box plus a
   margin);
2. a threshold of the feature inside the window (Otsu's; Li's for texture), then
   closing, hole filling and opening;
3. the connected components containing the positive clicks (box: the components
   mostly inside the box, clipped to it; see :mod:`.boxes`), minus those containing
   negative clicks;
   for texture, a blob of touching objects is cut at its distance-transform maxima
   and the parts under the clicks are kept, then limited to a geodesic reach from
   the clicks (``max_reach``, see :mod:`.reach`); for ``phase``, the threshold only
   places the background marker of a watershed of the smoothed grey image from the
   clicks (and the other objects' clicks on the frame), see :mod:`.phase`. Under
   ``feature="auto"`` the texture candidate is ``phase`` when the clicked blob has a
   bright halo (:func:`~.phase.has_halo`), plain ``texture`` otherwise.

With ``feature="auto"`` the candidate with the best score wins: the largest Otsu
separability among candidates that contain the clicks (or whose bounding box
overlaps the prompt box by at least 30 %), or, for a mask prompt, the best
agreement with the mask. The winner's feature and threshold become the object's
:class:`~.features.Appearance`, reused while propagating. Clicks that land a few
pixels off the thresholded object snap to the nearest component.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_li, threshold_otsu
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from napari_sam2v.engines.classic.colour import ColourModel, chroma_features
from napari_sam2v.engines.classic.features import (
    TEXTURE_FEATURES,
    Appearance,
    FrameView,
    binarize,
    feature_map,
    separability,
)
from napari_sam2v.engines.classic.geometry import CropMask, Window
from napari_sam2v.engines.classic.phase import halo_elevation, has_halo, segment_from_clicks
from napari_sam2v.engines.classic.reach import limit_reach_from_clicks
from napari_sam2v.engines.classic.settings import ClassicSettings
from napari_sam2v.errors import PromptError
from napari_sam2v.prompts import Prompt

__all__ = [
    "Seed",
    "auto_threshold",
    "background_color",
    "candidate_features",
    "empty_seed",
    "exclude_negatives",
    "points_in_window",
    "seed_from_prompt",
    "segment_window",
]


@dataclass(frozen=True)
class Seed:
    """An object segmented from a prompt.

    Parameters
    ----------
    mask : CropMask or None
        The object (``None`` when nothing could be segmented).
    appearance : Appearance
        Feature and threshold to reuse while propagating.
    quality : float
        0..1 confidence of the segmentation (separability or prompt agreement).
    """

    mask: CropMask | None
    appearance: Appearance
    quality: float


def background_color(view: FrameView, window: Window) -> tuple[float, float, float]:
    """Median colour (chromaticity r, g and brightness) of the border ring of ``window``."""
    rgb = view.rgb[window.slices]
    ring = np.concatenate([rgb[0], rgb[-1], rgb[1:-1, 0], rgb[1:-1, -1]], axis=0)
    med = np.median(chroma_features(ring[None])[0], axis=0)
    return float(med[0]), float(med[1]), float(med[2])


def learn_colour(
    view: FrameView, mask: CropMask, settings: ClassicSettings, background: tuple[float, ...]
) -> tuple[CropMask | None, Appearance] | None:
    """Learn a colour histogram model from ``mask`` and re-segment the object with it.

    The surroundings are a band around the object as wide as the object, so the
    model learns what the object must be told apart from (water, coral, other fish).
    Returns ``None`` when no model can be learned.
    """
    window = Window.around(
        mask.y0, mask.x0, mask.y1 - 1, mask.x1 - 1, margin=max(8.0, mask.size), shape=view.shape
    )
    obj = mask.in_window(window)
    surround = ~ndi.binary_dilation(obj, iterations=2)
    rgb = view.rgb[window.slices]
    if settings.sigma > 0:
        rgb = ndi.gaussian_filter(rgb, (settings.sigma, settings.sigma, 0), truncate=3.0)
    model = ColourModel.learn(rgb, obj, surround)
    if model is None:
        return None
    appearance = Appearance("color", 0.5, background, model)
    binary = binarize(
        model.probability(rgb),
        0.5,
        closing_radius=settings.closing_for("color"),
        opening_radius=settings.opening_radius,
    )
    labels, _ = ndi.label(binary)
    overlap = np.bincount(labels[obj], minlength=labels.max() + 1)
    overlap[0] = 0
    areas = np.bincount(labels.ravel(), minlength=labels.max() + 1)
    keep = np.flatnonzero(overlap >= 0.5 * np.maximum(areas, 1))
    keep = np.union1d(keep, [int(np.argmax(overlap))]) if overlap.max() else keep
    keep = keep[keep > 0]
    refined = CropMask.from_window(window, np.isin(labels, keep)) if keep.size else None
    return refined, appearance


def candidate_features(
    view: FrameView, window: Window, inside: np.ndarray, settings: ClassicSettings
) -> list[str]:
    """Features to try: the forced one, or an intensity/colour one plus texture.

    ``inside`` marks window pixels known to be on the object (clicks, box centre,
    mask); the intensity polarity compares them with the window's median.
    """
    if settings.feature != "auto":
        return [settings.feature]
    if view.is_rgb:
        return ["color"]
    gray = view.gray[window.slices]
    polarity = "bright" if float(gray[inside].mean()) >= float(np.median(gray)) else "dark"
    return [polarity, "phase"]


def offers_phase(view: FrameView, settings: ClassicSettings) -> bool:
    """Whether :func:`candidate_features` can offer ``"phase"`` on this frame.

    Known before any window is looked at, so that work only a ``phase`` seed uses
    can be skipped for the others.
    """
    return settings.feature == "phase" or (settings.feature == "auto" and not view.is_rgb)


def segment_window(
    view: FrameView, window: Window, feature: str, settings: ClassicSettings
) -> tuple[np.ndarray, np.ndarray, Appearance, float]:
    """Binarise ``window`` with Otsu's threshold of ``feature``; label components."""
    background = background_color(view, window) if feature == "color" else ()
    values = feature_map(
        view,
        window,
        feature,
        sigma=settings.sigma,
        texture_size=settings.texture_size,
        background=background,
    )
    threshold = (
        auto_threshold(values, feature) if settings.threshold is None else settings.threshold
    )
    binary = binarize(
        values,
        threshold,
        closing_radius=settings.closing_for(feature),
        opening_radius=settings.opening_radius,
    )
    labels, _ = ndi.label(binary)
    appearance = Appearance(feature, threshold, background)
    return labels, values, appearance, separability(values, threshold)


def auto_threshold(values: np.ndarray, feature: str) -> float:
    """Threshold of a window's feature values (a flat window: its maximum).

    Otsu's method for intensities and colour distances. Local texture has a narrow
    background mode and a long object tail, for which Otsu's threshold lands inside
    the objects (only organelles survive); Li's minimum cross-entropy threshold
    sits lower and keeps the faint cell edges.
    """
    if float(values.max()) - float(values.min()) < 1e-6:
        return float(values.max())
    if feature in TEXTURE_FEATURES:
        return float(threshold_li(values))
    return float(threshold_otsu(values, nbins=128))


def points_in_window(window: Window, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)`` of ``[x, y]`` points in ``window``, clipped to its edges."""
    rows = np.clip(np.round(points[:, 1]).astype(int) - window.y0, 0, window.shape[0] - 1)
    cols = np.clip(np.round(points[:, 0]).astype(int) - window.x0, 0, window.shape[1] - 1)
    return rows, cols


def _components_at(labels: np.ndarray, rc: tuple, *, snap: float) -> np.ndarray:
    """Labels under the clicks; a click on background snaps to a component within ``snap``.

    Clicks in a flat part of a textured object (or on a thin dark rim) often miss
    the thresholded pixels by a few pixels.
    """
    hit = labels[rc]
    if np.all(hit > 0):
        return np.unique(hit)
    distance, (rows, cols) = ndi.distance_transform_edt(labels == 0, return_indices=True)
    near = distance[rc] <= snap
    snapped = labels[rows[rc], cols[rc]]
    hit = np.where(hit > 0, hit, np.where(near, snapped, 0))
    hit = np.unique(hit)
    return hit[hit > 0]


def split_at_clicks(mask: np.ndarray, pos: tuple, *, depth: float) -> np.ndarray:
    """Keep the parts of a blob of touching objects that hold the positive clicks.

    The blob is cut by a watershed of its distance transform seeded at every
    maximum deeper than ``depth`` pixels relative to its surroundings (h-maxima);
    the basins holding a click are kept.
    """
    distance = ndi.distance_transform_edt(mask)
    peaks = h_maxima(distance, depth) > 0
    markers, n = ndi.label(peaks)
    if n < 2:
        return mask
    _, (near_r, near_c) = ndi.distance_transform_edt(~mask, return_indices=True)
    rows, cols = near_r[pos], near_c[pos]  # clicks snapped onto the blob
    basins = watershed(-distance, markers, mask=mask)
    kept = np.unique(basins[rows, cols])
    kept = kept[kept > 0]
    return np.isin(basins, kept)


def exclude_negatives(labels: np.ndarray, keep: np.ndarray, pos: tuple, neg: tuple) -> np.ndarray:
    """Remove what negative clicks point at from ``keep``.

    A component holding only negative clicks is dropped. A component holding
    positive and negative clicks is split by a watershed of its distance
    transform seeded at the clicks, and the negative side is dropped.
    """
    if not len(neg[0]):
        return keep
    pos_values = set(labels[pos].tolist()) if len(pos[0]) else set()
    for value in np.unique(labels[neg]):
        if not value:
            continue
        component = labels == value
        if value not in pos_values:
            keep &= ~component
            continue
        markers = np.zeros(labels.shape, np.int32)
        in_comp = component[neg]
        markers[neg[0][in_comp], neg[1][in_comp]] = 2
        in_comp = component[pos]
        markers[pos[0][in_comp], pos[1][in_comp]] = 1
        distance = ndi.distance_transform_edt(component)
        split = watershed(-distance, markers, mask=component)
        keep &= ~(split == 2)
    return keep


#: An intensity candidate this well separated (Otsu's between-class share of the
#: variance) is a clean two-level object: fluorescence, rendered or binary data. The
#: ``phase`` candidate is then not tried: on a flat interior it has no texture to
#: place its background marker by, and lost a clean square from its first tracked
#: frame. Phase-contrast cells stay far below it (T98G: at most 0.77 over 150 seed
#: windows, the ``cells`` sample at most 0.57).
CLEAN_SEPARABILITY = 0.85


def _clean_intensity(seed: Seed | None) -> bool:
    if seed is None or seed.appearance.feature not in ("bright", "dark"):
        return False
    return seed.quality >= CLEAN_SEPARABILITY


def _seed_points(
    view: FrameView, prompt: Prompt, settings: ClassicSettings, others: np.ndarray
) -> Seed:
    pts, labels_ = prompt.clicks
    pos, neg = pts[labels_ == 1], pts[labels_ == 0]
    if len(pos) == 0:
        # Only negative clicks: nothing to segment, but keep a usable appearance.
        return Seed(None, Appearance("bright", 1.0), 0.0)
    half = float(settings.initial_window)
    (x0, y0), (x1, y1) = pos.min(axis=0), pos.max(axis=0)
    best: Seed | None = None
    while True:
        window = Window.around(y0, x0, y1, x1, margin=half, shape=view.shape)
        pos_rc = points_in_window(window, pos)
        no_points = (np.array([], int), np.array([], int))
        neg_rc = points_in_window(window, neg) if len(neg) else no_points
        inside = np.zeros(window.shape, bool)
        inside[pos_rc] = True
        best = None
        grow = False
        # In the largest window, a region reaching all four of its sides is what lies
        # around the objects (the medium, the water), not an object: skip it, so that
        # a click on the background finds nothing instead of the whole frame.
        final = half >= settings.max_window or window.shape == view.shape
        for feature in candidate_features(view, window, inside, settings):
            if feature == "phase" and _clean_intensity(best):
                continue  # a clean two-level object: there is no halo to follow
            labels, _, appearance, sep = segment_window(view, window, feature, settings)
            hit = _components_at(labels, pos_rc, snap=settings.initial_window / 4)
            if hit.size == 0:
                continue
            if feature == "phase":
                elevation = halo_elevation(view, window, sigma=settings.halo_sigma)
                mask = segment_from_clicks(
                    labels > 0,
                    elevation,
                    pos_rc,
                    neg_rc,
                    window.points_inside(others),
                    marker_scale=settings.marker_scale,
                    background_gap=settings.texture_size,
                    snap=settings.initial_window / 8,
                )
                halo = settings.feature == "phase" or has_halo(
                    labels > 0, elevation, pos_rc, background_gap=settings.texture_size
                )
                if halo:
                    if final and Window.surrounds(mask):
                        continue
                    if mask.any() and (best is None or sep > best.quality):
                        grow = window.touches_inner_edge(mask, view.shape)
                        best = Seed(CropMask.from_window(window, mask), appearance, sep)
                    continue
                # No halo around the object: not phase contrast; plain texture it is.
                feature = "texture"
                appearance = Appearance(feature, appearance.threshold)
            mask = exclude_negatives(labels, np.isin(labels, hit), pos_rc, neg_rc)
            if feature == "texture" and settings.split_clusters > 0:
                mask = split_at_clicks(mask, pos_rc, depth=settings.split_clusters) & mask
            if not mask.any() or (final and Window.surrounds(mask)):
                continue
            if best is None or sep > best.quality:
                # Grow the window while the blob (before the reach limit) touches its
                # edge, so that the threshold is learned from a window wider than the cluster.
                grow = window.touches_inner_edge(mask, view.shape)
                if feature == "texture":
                    mask = limit_reach_from_clicks(
                        mask,
                        pos_rc,
                        factor=settings.max_reach,
                        min_radius=settings.initial_window / 2,
                    )
                best = Seed(CropMask.from_window(window, mask), appearance, sep)
        if best is None or not grow or final:
            break
        half = min(2.0 * half, float(settings.max_window))
    return best if best is not None else empty_seed(view, window, inside, settings)


def empty_seed(
    view: FrameView, window: Window, inside: np.ndarray, settings: ClassicSettings
) -> Seed:
    """A seed with no mask (nothing was segmented), keeping a usable appearance.

    The appearance is that of the first candidate feature of ``window`` (``inside``
    marks the pixels known to be on the object), so that tracking from a later
    prompt still has a feature and threshold.
    """
    feature = candidate_features(view, window, inside, settings)[0]
    _, _, appearance, _ = segment_window(view, window, feature, settings)
    return Seed(None, appearance, 0.0)


def _seed_mask(view: FrameView, prompt: Prompt, settings: ClassicSettings) -> Seed:
    assert prompt.mask is not None  # seed_from_prompt sends mask prompts here
    given = CropMask.from_array(prompt.mask)
    if given is None:
        raise PromptError(
            f"prompt (frame {prompt.frame}, object {prompt.object_id}): mask is empty"
        )
    margin = max(8.0, 0.5 * given.size)
    window = Window.around(
        given.y0, given.x0, given.y1 - 1, given.x1 - 1, margin=margin, shape=view.shape
    )
    target = given.in_window(window)
    best_app: Appearance | None = None
    best_score = -1.0
    for feature in candidate_features(view, window, target, settings):
        labels, _, appearance, _ = segment_window(view, window, feature, settings)
        binary = labels > 0
        union = np.count_nonzero(binary | target)
        score = np.count_nonzero(binary & target) / union if union else 0.0
        if best_app is None or score > best_score:
            best_app, best_score = appearance, score
    if best_app is None:
        best_app = Appearance("bright", 1.0)
    # A mask prompt is the user's answer: keep it exactly; only learn the appearance.
    return Seed(given, best_app, 1.0)


def seed_from_prompt(
    view: FrameView,
    prompt: Prompt,
    settings: ClassicSettings,
    *,
    others: np.ndarray | None = None,
) -> Seed:
    """Segment the object described by ``prompt``; learn a colour model for ``color``.

    See :func:`_seed_from_prompt` for the parameters. ``others`` holds ``[x, y]``
    positive clicks of *other* objects on the same frame: the ``phase`` feature
    gives each its own watershed marker, so a seed cannot flood a clicked neighbour.
    """
    others = np.zeros((0, 2)) if others is None else np.asarray(others, float).reshape(-1, 2)
    seed = _seed_from_prompt(view, prompt, settings, others)
    if seed.mask is None or seed.appearance.feature != "color":
        return seed
    learned = learn_colour(view, seed.mask, settings, seed.appearance.background)
    if learned is None:
        return seed
    refined, appearance = learned
    if prompt.mask is not None or refined is None:
        return Seed(seed.mask, appearance, seed.quality)
    return Seed(refined, appearance, seed.quality)


def _seed_from_prompt(
    view: FrameView, prompt: Prompt, settings: ClassicSettings, others: np.ndarray
) -> Seed:
    """Segment the object described by ``prompt`` on ``view``.

    Parameters
    ----------
    view : FrameView
        The prompt's frame.
    prompt : Prompt
        Clicks, box, box + clicks or mask (already bounds-checked).
    settings : ClassicSettings
        Engine options.
    others : ndarray
        ``(n, 2)`` positive clicks ``[x, y]`` of other objects on the frame.

    Returns
    -------
    Seed
    """
    if prompt.mask is not None:
        return _seed_mask(view, prompt, settings)
    if prompt.box is not None:
        from napari_sam2v.engines.classic.boxes import seed_box

        return seed_box(view, prompt, settings)
    return _seed_points(view, prompt, settings, others)
