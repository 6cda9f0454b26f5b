"""Bad inputs inside napari: one notification with the message, and napari keeps working."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = [pytest.mark.gui, pytest.mark.timeout(120)]


@pytest.fixture
def tracker(make_napari_viewer):
    """A viewer with the tracker docked through the plugin manifest."""
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam2v", "SAM 2 video tracker")
    yield viewer, widget
    if widget.session is not None:
        widget.session.close()


def test_nan_frame_click_is_a_notification_not_a_crash(tracker, tmp_path, qtbot, monkeypatch):
    from napari_sam2v._qt import _jobs
    from tests.reliability.corpus import _float_video

    errors: list[str] = []
    monkeypatch.setattr(_jobs, "show_error", errors.append)
    viewer, widget = tracker
    viewer.add_image(_float_video(np.nan, 5)(tmp_path), name="nan video")
    widget.form.layer_combo.setCurrentText("nan video")
    widget.form.engine_combo.setCurrentIndex(widget.form.engine_combo.findData("classic"))
    assert widget.start_session(tmp_path / "nan.zarr")
    viewer.dims.set_current_step(0, 5)
    widget.prompt_layers.points.add([5, 30, 30])
    qtbot.waitUntil(lambda: not widget.jobs.active and bool(errors), timeout=60_000)
    assert any("frame 5 contains NaN or infinite values" in e for e in errors), errors
    viewer.dims.set_current_step(0, 2)  # napari and the session keep working
    widget.prompt_layers.points.add([2, 30, 30])
    qtbot.waitUntil(lambda: not widget.jobs.active, timeout=60_000)
    assert widget.labels_layer.data[2][30, 30] == 1


def test_opening_a_store_from_a_newer_version_does_not_break_napari(
    make_napari_viewer, finished_store, tmp_path
):
    store = tmp_path / "newer.zarr"
    shutil.copytree(finished_store, store)
    attrs = store / ".zattrs"
    data = json.loads(attrs.read_text())
    data["napari_sam2v"]["format_version"] = 99
    attrs.write_text(json.dumps(data))
    viewer = make_napari_viewer()
    with pytest.raises(Exception, match="format version 99, newer than this napari-sam2v"):
        viewer.open(str(store), plugin="napari-sam2v")
    assert len(viewer.layers) == 0
    layers = viewer.open(str(finished_store), plugin="napari-sam2v")
    assert any(layer.name.endswith("objects") for layer in layers)
    assert json.loads(attrs.read_text()) == data  # the refused store was not touched
