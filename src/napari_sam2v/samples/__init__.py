"""Bundled samples: the synthetic ``reef`` clip (exact ground truth) and real ``cells``.

``load_reef()`` and ``load_cells()`` return a :class:`Sample`; ``reef_layer_data()`` and
``cells_layer_data()`` are the napari sample contributions (plain LayerData tuples, no
napari import). The generators live in :mod:`napari_sam2v.samples.reef` and
:mod:`napari_sam2v.samples.cells`.
"""

from __future__ import annotations

from napari_sam2v.samples._data import (
    Sample,
    cells_layer_data,
    load_cells,
    load_reef,
    reef_layer_data,
    sample_data_dir,
)

__all__ = [
    "Sample",
    "cells_layer_data",
    "load_cells",
    "load_reef",
    "reef_layer_data",
    "sample_data_dir",
]
