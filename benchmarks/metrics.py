"""DAVIS-style scores of one object's masks: region similarity J and boundary F.

Used by the accuracy harness (:mod:`benchmarks.accuracy`) and the classic engine
benchmark; they work on any pair of boolean masks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

__all__ = ["boundary_f_measure", "boundary_tolerance", "jaccard"]


def jaccard(pred: np.ndarray, truth: np.ndarray) -> float:
    """Region similarity J (IoU); 1.0 when both masks are empty."""
    union = np.count_nonzero(pred | truth)
    if union == 0:
        return 1.0
    return np.count_nonzero(pred & truth) / union


def boundary_tolerance(shape: Sequence[int], fraction: float = 0.008) -> int:
    """DAVIS boundary tolerance in pixels: ``fraction`` of the image diagonal, rounded up."""
    return max(1, math.ceil(fraction * math.hypot(shape[0], shape[1])))


def _boundary(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndi.binary_erosion(mask, border_value=0)


def boundary_f_measure(pred: np.ndarray, truth: np.ndarray, *, tolerance: int) -> float:
    """Boundary F-measure (DAVIS F) of two masks.

    Parameters
    ----------
    pred, truth : ndarray of bool
        Predicted and true masks of one object on one frame.
    tolerance : int
        A boundary pixel matches when the other boundary is within this distance.

    Returns
    -------
    float
        ``2PR / (P + R)``; 1.0 when both masks are empty, 0.0 when only one is.
    """
    has_pred, has_truth = bool(pred.any()), bool(truth.any())
    if not has_pred and not has_truth:
        return 1.0
    if has_pred != has_truth:
        return 0.0
    rows = np.flatnonzero((pred | truth).any(axis=1))
    cols = np.flatnonzero((pred | truth).any(axis=0))
    pad = tolerance + 2
    r0, r1 = max(rows[0] - pad, 0), min(rows[-1] + pad + 1, pred.shape[0])
    c0, c1 = max(cols[0] - pad, 0), min(cols[-1] + pad + 1, pred.shape[1])
    bp = _boundary(pred[r0:r1, c0:c1])
    bt = _boundary(truth[r0:r1, c0:c1])
    dist_to_truth = ndi.distance_transform_edt(~bt)
    dist_to_pred = ndi.distance_transform_edt(~bp)
    precision = float(np.mean(dist_to_truth[bp] <= tolerance))
    recall = float(np.mean(dist_to_pred[bt] <= tolerance))
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)
