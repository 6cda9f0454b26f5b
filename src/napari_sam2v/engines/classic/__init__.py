"""The weights-free classic engine (scikit-image): seeded thresholding and overlap tracking.

Create it with ``napari_sam2v.engines.create_engine("classic", **options)``; the
options are those of :class:`ClassicSettings`.
"""

from __future__ import annotations

from napari_sam2v.engines.classic.engine import ClassicEngine
from napari_sam2v.engines.classic.settings import ClassicSettings

__all__ = ["ClassicEngine", "ClassicSettings"]
