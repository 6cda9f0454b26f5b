"""Measurements of tracked objects: per frame, per track, MSD, plots and exports.

``measure(result_or_labels, image=None, *, pixel_size=None, frame_interval=None, ...)``
reads the labels frame by frame and returns a :class:`Measurements` with the
``frames``, ``tracks``, ``msd``, ``emsd`` and ``presence`` tables. Qt-free.
"""

from __future__ import annotations

from napari_sam2v.analysis.measure import measure
from napari_sam2v.analysis.measurements import Measurements, column_units

__all__ = ["Measurements", "column_units", "measure"]
