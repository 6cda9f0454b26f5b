"""Tuning options of the classic engine, validated once at construction."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from napari_sam2v.engines.classic.features import FEATURES, TEXTURE_FEATURES
from napari_sam2v.errors import EngineError

__all__ = ["ClassicSettings"]


@dataclass(frozen=True)
class ClassicSettings:
    """Options of :class:`~napari_sam2v.engines.classic.ClassicEngine`.

    Parameters
    ----------
    feature : str
        ``"auto"`` (chosen from the prompts: bright/dark against phase or
        texture for grey, colour for RGB) or one of ``"bright"``, ``"dark"``,
        ``"texture"``, ``"phase"``, ``"color"``.
    threshold : float or None
        Fixed threshold of the feature (grey values and colour distances are in
        ``[0, 1]`` after normalisation); ``None`` uses Otsu's threshold of each
        prompt's window.
    sigma : float
        Gaussian smoothing before thresholding, in pixels.
    texture_size : int
        Side of the local-standard-deviation window of the ``texture`` feature.
    closing_radius : int
        Closing radius before hole filling (bridges textured objects).
        ``-1`` chooses ``texture_size // 2`` for the texture feature, 0 otherwise.
    opening_radius : int
        Opening radius after hole filling (removes spurs and specks).
    initial_window : int
        Half-size of the first window around clicks; it doubles while the object
        touches the window's edge.
    max_window : int
        Largest half-size of a click window.
    search_margin : float
        Propagation search window margin, as a fraction of the object size.
    min_margin : int
        Smallest search margin, in pixels.
    min_overlap : float
        Lowest overlap (IoU) with the motion-shifted previous mask for the object to
        count as present.
    max_area_change : float
        Largest frame-to-frame area ratio (either way) before the object is declared
        absent or split from a neighbour.
    motion_damping : float
        Fraction of the last displacement used to predict the next one (0..1).
    adapt_threshold : float
        Weight (0..1) of the current window's Otsu threshold versus the threshold
        learned from the prompt; 0 keeps the learned threshold.
    split_touching : bool
        Split a component that grew too much with a marker watershed seeded by the
        previous mask, instead of declaring the object absent.
    split_clusters : float
        Texture feature only: cut the clicked blob at distance-transform maxima
        deeper than this many pixels and keep the part under the clicks (touching
        phase-contrast cells); 0 disables it.
    max_reach : float
        Texture feature only: a clicked blob is cut to the pixels whose distance
        from the click, measured inside the blob, is at most ``max_reach`` times
        the blob's half-width at the click (at least ``initial_window / 2``); while
        tracking, the object may reach at most that far beyond its predicted mask.
        It stops a seed or a tracked cell from spreading over a cluster of touching
        look-alikes; 0 disables it. While it is on, growth is bounded by the reach,
        so the texture feature's area rule is relaxed to ``max_area_change ** 2``.
    halo_sigma : float
        Phase feature only: Gaussian smoothing (px) of the grey image whose
        watershed outlines the cell between halo ridges.
    marker_scale : float
        Phase feature only: radius of the watershed marker at a click, as a
        fraction of the texture blob's half-width there.
    exit_fraction : float
        An object at the frame's edge whose area falls below this fraction of its
        whole area (its area when last seen clear of the edge) has left the field
        of view: it is reported absent, and re-found once that much of it is back
        in view. 0 disables the rule.
    """

    feature: str = "auto"
    threshold: float | None = None
    sigma: float = 0.5
    texture_size: int = 7
    closing_radius: int = -1
    opening_radius: int = 1
    initial_window: int = 48
    max_window: int = 512
    search_margin: float = 0.5
    min_margin: int = 8
    min_overlap: float = 0.2
    max_area_change: float = 2.0
    motion_damping: float = 0.8
    adapt_threshold: float = 0.5
    split_touching: bool = True
    split_clusters: float = 2.0
    max_reach: float = 1.5
    halo_sigma: float = 2.0
    marker_scale: float = 0.8
    exit_fraction: float = 0.25

    def __post_init__(self) -> None:
        if self.feature != "auto" and self.feature not in FEATURES:
            raise EngineError(
                f"classic engine: unknown feature {self.feature!r}; "
                f"choose 'auto' or one of {', '.join(FEATURES)}"
            )
        checks: list[tuple[str, bool]] = [
            (
                "threshold",
                self.threshold is None
                or (math.isfinite(self.threshold) and -1.0 <= self.threshold <= 2.0),
            ),
            ("sigma", self.sigma >= 0 and math.isfinite(self.sigma)),
            ("texture_size", self.texture_size >= 3),
            ("closing_radius", self.closing_radius >= -1),
            ("opening_radius", self.opening_radius >= 0),
            ("initial_window", self.initial_window >= 4),
            ("max_window", self.max_window >= self.initial_window),
            ("search_margin", self.search_margin >= 0 and math.isfinite(self.search_margin)),
            ("min_margin", self.min_margin >= 1),
            ("min_overlap", 0.0 < self.min_overlap < 1.0),
            ("max_area_change", self.max_area_change > 1.0),
            ("motion_damping", 0.0 <= self.motion_damping <= 1.0),
            ("adapt_threshold", 0.0 <= self.adapt_threshold <= 1.0),
            ("split_clusters", self.split_clusters >= 0 and math.isfinite(self.split_clusters)),
            ("max_reach", self.max_reach >= 0 and math.isfinite(self.max_reach)),
            ("halo_sigma", self.halo_sigma >= 0 and math.isfinite(self.halo_sigma)),
            ("marker_scale", 0 < self.marker_scale <= 1),
            ("exit_fraction", 0.0 <= self.exit_fraction < 1.0),
        ]
        bad = [name for name, ok in checks if not ok]
        if bad:
            values = ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            raise EngineError(f"classic engine: invalid option value(s): {values}")

    def closing_for(self, feature: str) -> int:
        """Closing radius used with ``feature``."""
        if self.closing_radius >= 0:
            return self.closing_radius
        return self.texture_size // 2 if feature in TEXTURE_FEATURES else 0

    def area_change_for(self, feature: str) -> float:
        """Largest frame-to-frame area ratio accepted for an object of ``feature``."""
        if feature == "texture" and self.max_reach > 0:
            return self.max_area_change**2
        return self.max_area_change

    def to_dict(self) -> dict[str, Any]:
        """Settings as a JSON-friendly dict (recorded in result stores)."""
        return asdict(self)
