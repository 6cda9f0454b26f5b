"""Phase-contrast cells: a marker watershed of the grey image between halo ridges.

In phase contrast a cell body has about the grey level of the medium; what marks
it is texture (organelles) and a thin bright *halo* along its outline. The
``texture`` feature finds where cells are (local standard deviation), but a
threshold of it merges touching cells and misses flat lamellipodia, and cutting
the merged blob by its shape over-splits irregular cells.

The ``phase`` feature keeps the texture threshold only to locate clear background,
and lets the grey image draw the outlines: a marker-controlled watershed of the
Gaussian-smoothed grey image (``halo_sigma``) floods from

* the object's marker (a disk at the clicks whose radius is ``marker_scale`` times
  the texture blob's half-width there, or the core of the predicted mask while
  tracking),
* the markers of the other tracked objects (or, on a prompted frame, of the other
  objects' clicks) and of negative clicks,
* while tracking, a marker for untracked neighbours: textured pixels well away from
  the prediction,
* a background marker: pixels farther than ``texture_size`` px from any textured
  pixel,

so every basin stops on the brightest line between markers: the halo ridge around
the cell, or the bright seam between two touching cells. A flat lamellipodium
inside the halo is flooded from the cell's marker; a neighbour is claimed by its
own marker or by the background before the object's flood crosses its halo.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from napari_sam2v.engines.classic.features import FrameView, feature_map, fill_holes
from napari_sam2v.engines.classic.geometry import Window

__all__ = [
    "OBJECT",
    "has_halo",
    "halo_elevation",
    "prediction_core",
    "segment_from_clicks",
    "segment_from_prediction",
]

#: Marker label of the object being segmented.
OBJECT = 1
_BACKGROUND = 2
_FIRST_OTHER = 3
_MIN_MARKER_RADIUS = 3.0


def halo_elevation(view: FrameView, window: Window, *, sigma: float) -> np.ndarray:
    """Gaussian-smoothed grey values of ``window`` (halos are ridges of it).

    Parameters
    ----------
    view : FrameView
        The frame.
    window : Window
        Region to compute; the filter sees a padded neighbourhood.
    sigma : float
        Smoothing in pixels (0: none).

    Returns
    -------
    ndarray
        float32 array of ``window.shape``.
    """
    # the "bright" feature is exactly this: smoothed grey over a padded window
    return feature_map(view, window, "bright", sigma=sigma, texture_size=0)


def _background_marker(foreground: np.ndarray, gap: int) -> np.ndarray:
    """Pixels farther than ``gap`` px from any foreground pixel."""
    if not foreground.any():
        return np.ones(foreground.shape, bool)
    return ndi.distance_transform_edt(~foreground) > gap


def _disks(shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray, radius: float) -> np.ndarray:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    out = np.zeros(shape, bool)
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        out |= (yy - r) ** 2 + (xx - c) ** 2 <= radius * radius
    return out


def _flood(elevation: np.ndarray, markers: np.ndarray) -> np.ndarray:
    """The object's basin, holes filled, as the connected part holding its marker."""
    basins = watershed(elevation, markers)
    mask = fill_holes(basins == OBJECT)
    labels, n = ndi.label(mask)
    if n > 1:
        touched = np.unique(labels[markers == OBJECT])
        mask = np.isin(labels, touched[touched > 0])
    return mask


def segment_from_clicks(
    foreground: np.ndarray,
    elevation: np.ndarray,
    positive: tuple[np.ndarray, np.ndarray],
    negative: tuple[np.ndarray, np.ndarray],
    others: tuple[np.ndarray, np.ndarray] = (np.zeros(0, int), np.zeros(0, int)),
    *,
    marker_scale: float,
    background_gap: int,
    snap: float,
    bound: np.ndarray | None = None,
) -> np.ndarray:
    """Segment the cell under the positive clicks of one window.

    Parameters
    ----------
    foreground : ndarray of bool
        Thresholded texture of the window (where cells may be).
    elevation : ndarray
        Smoothed grey values of the window (:func:`halo_elevation`).
    positive, negative : tuple of ndarray
        ``(rows, cols)`` of the clicks in window coordinates.
    others : tuple of ndarray, optional
        ``(rows, cols)`` of positive clicks of other objects inside the window; each
        seeds its own basin (a disk sized like the object's own marker).
    marker_scale : float
        Radius of the disk marker at each positive click, as a fraction of the
        texture blob's half-width (distance-transform value) at the click; at
        least 3 px.
    background_gap : int
        Pixels farther than this from the foreground seed the background.
    snap : float
        The half-width is the largest within this many pixels of a click.
    bound : ndarray of bool, optional
        Where the cell may lie (a prompt box): the background marker is placed
        beyond ``background_gap`` of it instead of beyond the foreground.

    Returns
    -------
    ndarray of bool
        The object (window-sized; empty when nothing could be segmented).
    """
    shape = foreground.shape
    if not len(positive[0]):
        return np.zeros(shape, bool)
    depth = ndi.distance_transform_edt(foreground)
    background = _background_marker(foreground if bound is None else bound, background_gap)
    # A click often lands in an untextured part of the cell (nucleus, lamellipodium):
    # take the blob's half-width from the deepest textured pixel near the click.
    look = max(1, int(round(snap)))
    depth = ndi.maximum_filter(depth, size=2 * look + 1)
    half_width = float(depth[positive].max())
    radius = max(_MIN_MARKER_RADIUS, marker_scale * half_width)
    markers = np.zeros(shape, np.int32)
    markers[background] = _BACKGROUND
    if len(negative[0]):
        markers[_disks(shape, *negative, _MIN_MARKER_RADIUS)] = _FIRST_OTHER
    for index, (row, col) in enumerate(zip(*others, strict=True)):
        other_radius = max(_MIN_MARKER_RADIUS, marker_scale * float(depth[row, col]))
        disk = _disks(shape, np.array([row]), np.array([col]), other_radius)
        markers[disk] = _FIRST_OTHER + 1 + index
    markers[_disks(shape, *positive, radius)] = OBJECT
    return _flood(elevation, markers)


#: Smallest halo contrast (see :func:`has_halo`) for ``feature="auto"`` to use ``phase``.
HALO_CONTRAST = 0.1


def has_halo(
    foreground: np.ndarray,
    elevation: np.ndarray,
    positive: tuple[np.ndarray, np.ndarray],
    *,
    background_gap: int,
) -> bool:
    """Whether the textured blob under the clicks has a bright rim, as in phase contrast.

    The rim is a band from 2 px outside the blob to ``background_gap // 2 + 2`` px
    inside it (the local standard deviation widens a blob by about half its
    window). The blob has a halo when the median smoothed grey of the rim exceeds
    the median of the clear background by more than :data:`HALO_CONTRAST` times the
    spread of the grey inside the blob (interquartile range / 1.349, robust to
    the few very bright or dark organelles). Medians make the test insensitive to
    granular texture, which is as often darker as brighter than the medium. The
    blob, not a watershed result, is tested because a watershed outline always
    runs along bright ridges, halo or not.
    """
    labels, _ = ndi.label(foreground)
    hit = np.unique(labels[positive])
    hit = hit[hit > 0]
    background = _background_marker(foreground, background_gap)
    if hit.size == 0 or np.count_nonzero(background) < 16:
        return False
    blob = np.isin(labels, hit)
    inner = background_gap // 2 + 2
    rim = ndi.binary_dilation(blob, iterations=2) & ~ndi.binary_erosion(blob, iterations=inner)
    q1, q3 = np.percentile(elevation[blob], [25, 75])
    spread = float(q3 - q1) / 1.349
    if spread <= 0 or not rim.any():
        return False
    contrast = float(np.median(elevation[rim])) - float(np.median(elevation[background]))
    return contrast > HALO_CONTRAST * spread


def prediction_core(predicted: np.ndarray, *, fraction: float = 0.5) -> np.ndarray:
    """Pixels of a predicted mask at least ``fraction`` of its largest depth inside it.

    The core survives small motions and shape changes, so it is a safe watershed
    marker for the object on the next frame.
    """
    if not predicted.any():
        return predicted
    depth = ndi.distance_transform_edt(np.pad(predicted, 1))[1:-1, 1:-1]
    return depth >= max(1.0, fraction * float(depth.max()))


def segment_from_prediction(
    foreground: np.ndarray,
    elevation: np.ndarray,
    predicted: np.ndarray,
    others: Sequence[np.ndarray] = (),
    *,
    background_gap: int,
    neighbour_gap: int,
) -> np.ndarray:
    """Find a tracked cell on a new frame from its predicted (motion-shifted) mask.

    Parameters
    ----------
    foreground : ndarray of bool
        Thresholded texture of the search window.
    elevation : ndarray
        Smoothed grey values of the window (:func:`halo_elevation`).
    predicted : ndarray of bool
        The object's predicted mask in the window.
    others : sequence of ndarray of bool
        Predicted masks of the other tracked objects in the window; each seeds its
        own basin, so the object cannot flood over a tracked neighbour.
    background_gap : int
        Pixels farther than this from the foreground seed the background.
    neighbour_gap : int
        Textured pixels farther than this from the prediction (and at least
        ``background_gap // 2`` px deep inside the texture) seed one more basin for
        untracked neighbours, so the object cannot creep over a cell nobody clicked.

    Returns
    -------
    ndarray of bool
        The object (window-sized; empty when its marker is all background).
    """
    shape = foreground.shape
    background = _background_marker(foreground, background_gap)
    core = prediction_core(predicted) & ~background
    if not core.any():
        return np.zeros(shape, bool)
    markers = np.zeros(shape, np.int32)
    markers[background] = _BACKGROUND
    for index, other in enumerate(others):
        other_core = prediction_core(other & ~predicted) & ~background
        markers[other_core] = _FIRST_OTHER + index
    deep = ndi.distance_transform_edt(foreground) >= max(1, background_gap // 2)
    far = deep & ~ndi.binary_dilation(predicted, iterations=max(1, neighbour_gap))
    markers[far & (markers == 0)] = _FIRST_OTHER + len(others)
    markers[core] = OBJECT
    return _flood(elevation, markers)
