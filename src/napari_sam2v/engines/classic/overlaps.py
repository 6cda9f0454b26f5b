"""Keep tracked objects apart: pixels claimed by two objects go to one of them.

When two tracked objects touch or cross, thresholding gives one blob that both
objects' overlap rules would keep. Every contested pixel is given to one object:
by colour (the higher object probability of the two colour models, which also
handles a fish passing in front of another) when both have one, otherwise by a
marker watershed seeded with the two objects' predicted (motion-shifted) masks.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from napari_sam2v.engines.classic.features import Appearance, FrameView
from napari_sam2v.engines.classic.geometry import CropMask, Window

__all__ = ["resolve_overlaps"]


def _bbox_overlap(a: CropMask, b: CropMask) -> bool:
    return a.y0 < b.y1 and b.y0 < a.y1 and a.x0 < b.x1 and b.x0 < a.x1


def _split_pair(
    view: FrameView,
    window: Window,
    ma: np.ndarray,
    mb: np.ndarray,
    pred_a: CropMask | None,
    pred_b: CropMask | None,
    app_a: Appearance,
    app_b: Appearance,
) -> tuple[np.ndarray, np.ndarray]:
    """Share the union of two window-sized masks between the two objects."""
    union = ma | mb
    if app_a.model is not None and app_b.model is not None:
        rgb = view.rgb[window.slices]
        to_a = app_a.model.probability(rgb) >= app_b.model.probability(rgb)
        both = ma & mb
        return (ma & ~both) | (both & to_a), (mb & ~both) | (both & ~to_a)
    pa = pred_a.in_window(window) if pred_a is not None else ma & ~mb
    pb = pred_b.in_window(window) if pred_b is not None else mb & ~ma
    markers = np.zeros(window.shape, np.int32)
    markers[pa & ~pb & union] = 1
    markers[pb & ~pa & union] = 2
    if not (markers == 1).any() or not (markers == 2).any():
        # No separating evidence: split the contested pixels by distance.
        markers[ma & ~mb] = 1
        markers[mb & ~ma] = 2
    if not (markers == 1).any() or not (markers == 2).any():
        return ma, mb & ~ma
    distance = ndi.distance_transform_edt(union)
    split = watershed(-distance, markers, mask=union)
    return split == 1, split == 2


def resolve_overlaps(
    view: FrameView,
    masks: dict[int, CropMask | None],
    predictions: dict[int, CropMask | None],
    appearances: dict[int, Appearance],
    *,
    fixed: set[int] | frozenset[int] = frozenset(),
) -> dict[int, CropMask | None]:
    """Make the masks of tracked objects disjoint.

    Parameters
    ----------
    view : FrameView
        The frame.
    masks : dict of int to CropMask or None
        Masks found on this frame (``None`` = absent).
    predictions : dict of int to CropMask or None
        Each object's motion-shifted previous mask.
    appearances : dict of int to Appearance
        Each object's appearance (colour models are used when both have one).
    fixed : set of int, optional
        Objects whose mask comes from a prompt on this frame: never changed.

    Returns
    -------
    dict of int to CropMask or None
        The updated masks (objects that lose every pixel become ``None``).
    """
    out = dict(masks)
    ids = sorted(oid for oid, m in out.items() if m is not None)
    for i, oid_a in enumerate(ids):
        for oid_b in ids[i + 1 :]:
            a, b = out[oid_a], out[oid_b]
            if a is None or b is None or not _bbox_overlap(a, b):
                continue
            if oid_a in fixed and oid_b in fixed:
                continue
            window = Window(min(a.y0, b.y0), min(a.x0, b.x0), max(a.y1, b.y1), max(a.x1, b.x1))
            ma, mb = a.in_window(window), b.in_window(window)
            if not (ma & mb).any():
                continue
            if oid_a in fixed:
                new_a, new_b = ma, mb & ~ma
            elif oid_b in fixed:
                new_a, new_b = ma & ~mb, mb
            else:
                new_a, new_b = _split_pair(
                    view,
                    window,
                    ma,
                    mb,
                    predictions.get(oid_a),
                    predictions.get(oid_b),
                    appearances[oid_a],
                    appearances[oid_b],
                )
            out[oid_a] = CropMask.from_window(window, new_a)
            out[oid_b] = CropMask.from_window(window, new_b)
    return out
