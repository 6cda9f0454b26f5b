"""Colour models for RGB footage: chromaticity distance and histogram back-projection.

Underwater light changes brightness a lot (caustics, depth) but hue much less, so
colours are described by their chromaticity ``(r, g) / (r + g + b)`` plus a coarse
brightness. Two features are built on it:

* :func:`colour_distance` - distance from one background colour, used to find an
  object from a click before anything is known about it;
* :class:`ColourModel` - object-versus-surroundings histograms learned from a
  segmented object (classic back-projection, as in CamShift): a pixel's value is
  the probability that its colour belongs to the object. It separates a fish from
  the coral it swims over, or from another fish that crosses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = ["ColourModel", "chroma_features", "colour_distance"]

_CHROMA_BINS = 24
_BRIGHT_BINS = 4
# Pseudo-count: a colour seen in neither region gets probability 0.5 (undecided).
_PRIOR = 1e-6


def chroma_features(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` RGB in ``[0, 1]`` to ``(H, W, 3)``: chromaticity r, g and brightness."""
    total = rgb.sum(axis=-1, keepdims=True)
    chroma = rgb[..., :2] / np.maximum(total, 1e-3)
    bright = total / 3.0
    return np.concatenate([chroma, bright], axis=-1).astype(np.float32, copy=False)


def colour_distance(
    rgb: np.ndarray, background: np.ndarray, *, chroma_weight: float = 3.0
) -> np.ndarray:
    """Distance of each pixel from a background colour (chromaticity weighted).

    Parameters
    ----------
    rgb : ndarray
        ``(H, W, 3)`` float RGB in ``[0, 1]``.
    background : ndarray
        Background colour as :func:`chroma_features` of one pixel (3 values).
    chroma_weight : float
        Weight of chromaticity against brightness.

    Returns
    -------
    ndarray
        ``(H, W)`` float32 distances.
    """
    feats = chroma_features(rgb) - np.asarray(background, dtype=np.float32)
    feats[..., :2] *= chroma_weight
    return np.sqrt(np.einsum("ijk,ijk->ij", feats, feats)).astype(np.float32, copy=False)


def _bin_index(feats: np.ndarray) -> np.ndarray:
    # chromaticity r, g lie in [0, 1]; brightness in [0, 1]
    r = np.clip((feats[..., 0] * _CHROMA_BINS).astype(np.int32), 0, _CHROMA_BINS - 1)
    g = np.clip((feats[..., 1] * _CHROMA_BINS).astype(np.int32), 0, _CHROMA_BINS - 1)
    b = np.clip((feats[..., 2] * _BRIGHT_BINS).astype(np.int32), 0, _BRIGHT_BINS - 1)
    return (r * _CHROMA_BINS + g) * _BRIGHT_BINS + b


def _histogram(index: np.ndarray) -> np.ndarray:
    counts = np.bincount(index.ravel(), minlength=_CHROMA_BINS * _CHROMA_BINS * _BRIGHT_BINS)
    hist = counts.reshape(_CHROMA_BINS, _CHROMA_BINS, _BRIGHT_BINS).astype(np.float64)
    hist = ndi.gaussian_filter(hist, (0.7, 0.7, 0.5), mode="constant")
    return hist / max(hist.sum(), 1.0)


@dataclass(frozen=True, eq=False)
class ColourModel:
    """Probability that a colour belongs to the object rather than its surroundings.

    Parameters
    ----------
    table : ndarray
        ``(bins,)`` float32 look-up table of object probabilities.
    """

    table: np.ndarray

    @classmethod
    def learn(cls, rgb: np.ndarray, obj: np.ndarray, surround: np.ndarray) -> ColourModel | None:
        """Learn from an object mask and a mask of its surroundings (same window).

        Returns ``None`` when either region is empty.
        """
        if not obj.any() or not surround.any():
            return None
        index = _bin_index(chroma_features(rgb))
        h_obj = _histogram(index[obj])
        h_bg = _histogram(index[surround])
        prob = (h_obj + _PRIOR) / (h_obj + h_bg + 2 * _PRIOR)
        return cls(prob.reshape(-1).astype(np.float32))

    def probability(self, rgb: np.ndarray) -> np.ndarray:
        """``(H, W)`` float32 object probability of each pixel of ``rgb``."""
        return self.table[_bin_index(chroma_features(rgb))]
