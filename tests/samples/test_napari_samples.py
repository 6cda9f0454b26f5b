"""The samples as napari sample contributions (npe2 manifest and viewer)."""

from __future__ import annotations

import numpy as np
import pytest


def test_npe2_lists_both_samples() -> None:
    npe2 = pytest.importorskip("npe2")
    manager = npe2.PluginManager.instance()
    manager.discover()
    manifest = manager.get_manifest("napari-sam2v")
    samples = {s.key: s for s in manifest.contributions.sample_data}
    assert {"reef", "cells"} <= set(samples)
    commands = {c.id: c.python_name for c in manifest.contributions.commands}
    assert commands[samples["reef"].command] == "napari_sam2v.samples:reef_layer_data"
    assert commands[samples["cells"].command] == "napari_sam2v.samples:cells_layer_data"


@pytest.mark.gui
def test_open_reef_sample_in_napari(make_napari_viewer) -> None:
    viewer = make_napari_viewer()
    viewer.open_sample("napari-sam2v", "reef")
    image, labels = viewer.layers["reef"], viewer.layers["reef ground truth"]
    assert image.rgb and image.data.shape == (48, 288, 384, 3)
    assert type(labels).__name__ == "Labels"
    assert set(np.unique(np.asarray(labels.data))) == {0, 1, 2, 3}
    assert labels.metadata["reference_is_truth"] is True


@pytest.mark.gui
def test_open_cells_sample_in_napari(make_napari_viewer) -> None:
    viewer = make_napari_viewer()
    viewer.open_sample("napari-sam2v", "cells")
    image = viewer.layers["T98G phase"]
    labels = viewer.layers["T98G reference masks (pipeline output, not ground truth)"]
    assert image.data.shape == (37, 320, 320) and not image.rgb
    np.testing.assert_allclose(image.scale, (1.0, 0.87, 0.87))
    assert type(labels).__name__ == "Labels" and labels.data.max() >= 8
