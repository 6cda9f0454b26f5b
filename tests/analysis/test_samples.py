"""The API, exports and plots on both bundled samples (reef: RGB, cells: calibrated)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from napari_sam2v.analysis import measure
from napari_sam2v.samples import load_cells, load_reef


@pytest.mark.parametrize("load", [load_reef, load_cells], ids=["reef", "cells"])
def test_measure_save_and_plot_sample(load, tmp_path) -> None:
    sample = load()
    m = measure(sample, sample.frames)
    assert m.calibration == sample.calibration
    # Every labelled (object, frame) is a row, and nothing else.
    counts = [np.unique(f[f > 0]).size for f in sample.labels]
    assert len(m.frames) == sum(counts)
    names = {o.id: o.name for o in sample.objects}
    for oid, name in names.items():
        assert (m.frames.loc[m.frames["object_id"] == oid, "name"] == name).all()
    channels = 1 if sample.frames.ndim == 3 else sample.frames.shape[-1]
    suffixes = [""] if channels == 1 else [f"_c{c}" for c in range(channels)]
    for suffix in suffixes:
        assert m.frames[f"mean_intensity{suffix}"].notna().all()
    files = m.save(tmp_path, format="csv")
    back = pd.read_csv(files[0])
    np.testing.assert_allclose(back["area"], m.frames["area"])
    side = json.loads(files[-1].read_text())
    assert side["calibration"] == sample.calibration.to_dict()
    plots = m.save_plots(tmp_path, formats=("png",), dpi=40)
    assert len(plots) == 4 and all(p.stat().st_size > 1000 for p in plots)
    data, kwargs, _ = m.tracks_layer_data()
    assert data.shape == (len(m.frames), 4) and len(kwargs["features"]) == len(data)
