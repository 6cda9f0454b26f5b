"""Per-window feature maps and binarisation for the classic engine.

Four features turn a window of a frame into "object-ness" values where the object
is *above* a threshold:

``bright``
    smoothed grey value (fluorescence, bright-field objects brighter than the medium);
``dark``
    negated smoothed grey value (dark objects, absorbing stains);
``texture``
    local standard deviation of grey values (phase-contrast cells: bright halos and
    dark organelles on a flat background, whose mean grey equals the background's);
``phase``
    the texture value, used only to locate clear background: the object itself is a
    marker watershed of the smoothed grey image between halo ridges (phase-contrast
    cells, see :mod:`.phase`);
``color``
    distance in chromaticity and brightness from the background colour around the
    prompt, then, once the object is segmented, the object probability of a colour
    histogram model (coloured fish or corals on blue water; see :mod:`.colour`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from napari_sam2v.engines.classic.colour import ColourModel, colour_distance
from napari_sam2v.engines.classic.geometry import Window

__all__ = [
    "FEATURES",
    "TEXTURE_FEATURES",
    "Appearance",
    "FrameView",
    "binarize",
    "feature_map",
    "fill_holes",
    "separability",
]

#: Feature names accepted by the ``feature`` option of the classic engine.
FEATURES = ("bright", "dark", "texture", "phase", "color")

#: Features whose values are the local standard deviation of grey values.
TEXTURE_FEATURES = ("texture", "phase")


@dataclass(frozen=True)
class Appearance:
    """What an object looks like: the feature, its threshold and the background colour.

    Parameters
    ----------
    feature : str
        One of :data:`FEATURES`.
    threshold : float
        Pixels whose feature value is above it are object candidates.
    background : tuple of float
        Background colour as chromaticity r, g and brightness (``color`` feature
        only; empty otherwise).
    model : ColourModel, optional
        Object-versus-surroundings colour histograms (``color`` feature); when set,
        the feature is the object probability and ``threshold`` is 0.5.
    """

    feature: str
    threshold: float
    background: tuple[float, ...] = ()
    model: ColourModel | None = None


class FrameView:
    """Lazy normalised views of one frame (grey always, RGB only when needed).

    Parameters
    ----------
    gray : ndarray
        ``(H, W)`` float32 grey frame in ``[0, 1]``.
    rgb_loader : callable, optional
        Returns the ``(H, W, 3)`` float32 RGB frame; ``None`` for grey videos.
    """

    def __init__(
        self, gray: np.ndarray, rgb_loader: Callable[[], np.ndarray] | None = None
    ) -> None:
        self.gray = gray
        self._rgb_loader = rgb_loader
        self._rgb: np.ndarray | None = None

    @property
    def is_rgb(self) -> bool:
        """Whether the frame has colour."""
        return self._rgb_loader is not None

    @property
    def rgb(self) -> np.ndarray:
        """``(H, W, 3)`` float32 frame (grey replicated for grey videos)."""
        if self._rgb is None:
            if self._rgb_loader is None:
                self._rgb = np.repeat(self.gray[..., None], 3, axis=2)
            else:
                self._rgb = self._rgb_loader()
        return self._rgb

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self.gray.shape[0], self.gray.shape[1]


def _padded(window: Window, pad: int, shape: tuple[int, int]) -> tuple[Window, tuple[slice, slice]]:
    outer = Window(
        max(0, window.y0 - pad),
        max(0, window.x0 - pad),
        min(shape[0], window.y1 + pad),
        min(shape[1], window.x1 + pad),
    )
    inner = (
        slice(window.y0 - outer.y0, window.y0 - outer.y0 + window.shape[0]),
        slice(window.x0 - outer.x0, window.x0 - outer.x0 + window.shape[1]),
    )
    return outer, inner


def feature_map(
    view: FrameView,
    window: Window,
    feature: str,
    *,
    sigma: float,
    texture_size: int,
    background: tuple[float, ...] = (),
    model: ColourModel | None = None,
) -> np.ndarray:
    """Compute ``feature`` over ``window`` (filters see a padded neighbourhood).

    Parameters
    ----------
    view : FrameView
        The frame.
    window : Window
        Region to compute.
    feature : str
        One of :data:`FEATURES`.
    sigma : float
        Gaussian smoothing of grey/colour values (pixels; 0 disables it).
    texture_size : int
        Side of the square neighbourhood of the ``texture`` and ``phase`` features.
    background : tuple of float
        Background colour (chromaticity r, g, brightness) for the ``color`` feature.
    model : ColourModel, optional
        When given, the ``color`` feature is the model's object probability.

    Returns
    -------
    ndarray
        float32 array of ``window.shape``.
    """
    pad = int(np.ceil(3 * sigma)) + (texture_size if feature in TEXTURE_FEATURES else 0)
    outer, inner = _padded(window, pad, view.shape)
    if feature == "color":
        rgb = view.rgb[outer.slices]
        if sigma > 0:
            rgb = ndi.gaussian_filter(rgb, (sigma, sigma, 0), truncate=3.0)
        rgb = rgb[inner]
        if model is not None:
            return model.probability(rgb)
        return colour_distance(rgb, np.asarray(background, dtype=np.float32))
    gray = view.gray[outer.slices]
    if sigma > 0:
        gray = ndi.gaussian_filter(gray, sigma, truncate=3.0)
    if feature == "bright":
        out = gray
    elif feature == "dark":
        out = -gray
    elif feature in TEXTURE_FEATURES:
        mean = ndi.uniform_filter(gray, texture_size)
        mean_sq = ndi.uniform_filter(gray * gray, texture_size)
        out = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))
    else:
        raise ValueError(f"unknown feature {feature!r}: choose one of {', '.join(FEATURES)}")
    return np.ascontiguousarray(out[inner], dtype=np.float32)


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return yy * yy + xx * xx <= radius * radius + radius


def fill_holes(binary: np.ndarray) -> np.ndarray:
    """Fill background regions that do not reach the array's border.

    Same result as :func:`scipy.ndimage.binary_fill_holes` (4-connected
    background), computed with one labelling pass instead of iterated dilations.
    """
    background, n = ndi.label(~binary)
    if n == 0:
        return binary
    outside = np.zeros(n + 1, dtype=bool)
    for edge in (background[0], background[-1], background[:, 0], background[:, -1]):
        outside[edge] = True
    outside[0] = True
    return ~outside[background] | binary


def binarize(
    values: np.ndarray,
    threshold: float,
    *,
    closing_radius: int,
    opening_radius: int,
) -> np.ndarray:
    """Threshold a feature map and clean it: closing, hole filling, opening.

    Parameters
    ----------
    values : ndarray
        Feature map.
    threshold : float
        Object pixels are strictly above it.
    closing_radius, opening_radius : int
        Radii of the disk-shaped structuring elements (0 skips the step).

    Returns
    -------
    ndarray of bool
    """
    binary = values > threshold
    if closing_radius > 0:
        # Pad so that the closing does not glue objects to the window border.
        r = closing_radius
        padded = np.pad(binary, r, mode="constant")
        binary = ndi.binary_closing(padded, _disk(r))[r:-r, r:-r]
    binary = fill_holes(binary)
    if opening_radius > 0:
        binary = ndi.binary_opening(binary, _disk(opening_radius))
    return binary


def separability(values: np.ndarray, threshold: float) -> float:
    """Otsu's separability: between-class over total variance at ``threshold`` (0..1)."""
    flat = values.reshape(-1)
    total = float(flat.var())
    if total <= 0:
        return 0.0
    above = flat > threshold
    w1 = float(above.mean())
    if w1 in (0.0, 1.0):
        return 0.0
    m1 = float(flat[above].mean())
    m0 = float(flat[~above].mean())
    return w1 * (1.0 - w1) * (m1 - m0) ** 2 / total
