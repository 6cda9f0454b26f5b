"""Geodesic reach limits: keep an object from spreading over touching look-alikes.

Dense phase-contrast cells threshold into one blob per cluster. Cutting the blob
at distance-transform maxima (``split_clusters``) fails on irregular cells, so a
second, size-based limit is applied to the texture feature: the object keeps only
the pixels it can reach *inside the blob* within a radius derived from the object
itself. Distances are measured by conditional dilation (4-connected steps), so a
neighbour joined by a narrow bridge is far away even when it is close in a
straight line.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["geodesic_ball", "limit_reach_from_clicks", "limit_reach_from_prediction"]


def geodesic_ball(mask: np.ndarray, sources: np.ndarray, radius: int) -> np.ndarray:
    """Pixels of ``mask`` within ``radius`` steps of ``sources``, moving inside ``mask``.

    Parameters
    ----------
    mask : ndarray of bool
        Region in which paths may run.
    sources : ndarray of bool
        Start pixels (those outside ``mask`` are ignored).
    radius : int
        Largest number of 4-connected steps.

    Returns
    -------
    ndarray of bool
    """
    start = sources & mask
    if radius <= 0 or not start.any():
        return start
    return ndi.binary_dilation(start, iterations=int(radius), mask=mask)


def limit_reach_from_clicks(
    mask: np.ndarray, clicks: tuple[np.ndarray, np.ndarray], *, factor: float, min_radius: float
) -> np.ndarray:
    """Cut the connected parts of ``mask`` holding the clicks to a geodesic ball.

    The radius is ``factor`` times the largest distance-transform value (the
    half-width of the blob) within ``min_radius / 2`` pixels of the clicks, and at
    least ``min_radius``. Components without a click are left as they are.

    Parameters
    ----------
    mask : ndarray of bool
        Window-sized object mask.
    clicks : tuple of ndarray
        ``(rows, cols)`` of the positive clicks in window coordinates.
    factor : float
        Radius over half-width; 0 returns ``mask`` unchanged.
    min_radius : float
        Smallest radius in pixels.

    Returns
    -------
    ndarray of bool
    """
    if factor <= 0 or not mask.any() or not len(clicks[0]):
        return mask
    distance, (near_r, near_c) = ndi.distance_transform_edt(~mask, return_indices=True)
    del distance
    rows, cols = near_r[clicks], near_c[clicks]  # clicks snapped onto the mask
    depth = ndi.distance_transform_edt(mask)
    sources = np.zeros(mask.shape, bool)
    sources[rows, cols] = True
    look = max(1, int(round(min_radius / 2)))
    local = ndi.maximum_filter(depth, size=2 * look + 1)[rows, cols]
    radius = max(float(min_radius), factor * float(local.max()))
    labels, _ = ndi.label(mask)
    clicked = np.isin(labels, np.unique(labels[rows, cols]))
    ball = geodesic_ball(clicked, sources, int(round(radius)))
    return (mask & ~clicked) | ball


def limit_reach_from_prediction(
    mask: np.ndarray, predicted: np.ndarray, *, radius: float
) -> np.ndarray:
    """Keep the pixels of ``mask`` within ``radius`` geodesic steps of the prediction.

    Parameters
    ----------
    mask : ndarray of bool
        Window-sized candidate mask of a tracked object.
    predicted : ndarray of bool
        The motion-shifted previous mask (same shape).
    radius : float
        Largest growth beyond the prediction, in pixels.

    Returns
    -------
    ndarray of bool
        ``mask`` unchanged when it does not overlap the prediction.
    """
    core = mask & predicted
    if not core.any():
        return mask
    return geodesic_ball(mask, core, int(round(radius)))
