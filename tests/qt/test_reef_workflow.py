"""The whole widget workflow on the bundled reef sample, as a user would do it.

SAM 2 runs with ``random-tiny`` (random weights: the masks are arbitrary, so these
tests check the plumbing, not the segmentation); the classic engine gives real masks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from napari.utils.key_bindings import KeyBinding

from napari_sam2v.engines import create_engine
from napari_sam2v.store import open_result

pytestmark = pytest.mark.gui


def _reef_session(viewer, widget, path, engine: str, model: str | None = None) -> None:
    viewer.open_sample("napari-sam2v", "reef")
    f = widget.form
    f.layer_combo.setCurrentText("reef")
    f.engine_combo.setCurrentIndex(f.engine_combo.findData(engine))
    if model is not None:
        f.model_combo.setCurrentIndex(f.model_combo.findData(model))
        f.device_combo.setCurrentIndex(f.device_combo.findData("cpu"))
    assert widget.start_session(path)


def _press(layer, key: str) -> None:
    """Run the layer's key binding for ``key`` as napari does on a key press."""
    layer.keymap[KeyBinding.from_str(key)](layer)


@pytest.mark.filterwarnings("ignore:.*random weights.*")
def test_random_tiny_preview_cancel_resume_refine_undo(tracker, tmp_path, wait_jobs) -> None:
    viewer, widget = tracker
    store = tmp_path / "reef.zarr"
    _reef_session(viewer, widget, store, "sam2", "random-tiny")
    widget.load_model()
    assert not widget.form.propagate_button.isEnabled()  # busy while loading
    wait_jobs(widget, timeout=120)
    assert "random weights" in widget.form.status.text()
    assert widget.form.propagate_button.isEnabled()

    points, labels = widget.prompt_layers.points, widget.labels_layer
    for frame, (y, x) in [(0, (152, 50)), (0, (148, 60)), (3, (150, 70))]:
        viewer.dims.set_current_step(0, frame)
        points.add([frame, y, x])
        wait_jobs(widget)
        expected = widget.session.compose(widget.last_result)
        np.testing.assert_array_equal(labels.data[frame], expected)
    assert len(widget.click_latencies) == 3
    print(f"\nwidget click latency (random-tiny): {[round(t, 3) for t in widget.click_latencies]}")

    # Ctrl+Z / Ctrl+Shift+Z on the prompts layer
    _press(points, "Control-Z")
    wait_jobs(widget)
    assert widget.session.frame_prompt(3, 1) is None and len(points.data) == 2
    _press(points, "Control-Shift-Z")
    wait_jobs(widget)
    assert widget.session.frame_prompt(3, 1) is not None and len(points.data) == 3

    # propagate forward over 0..29, cancel after the first frames
    f = widget.form
    f.direction_combo.setCurrentIndex(f.direction_combo.findData("forward"))
    f.range_check.setChecked(True)
    f.range_lo.setValue(0)
    f.range_hi.setValue(29)
    widget.propagate()
    assert f.cancel_button.isEnabled() and not f.layer_combo.isEnabled()
    from qtpy.QtCore import QCoreApplication

    while f.progress.value() < 2 and widget.jobs.active:
        QCoreApplication.processEvents()
    widget.cancel()
    wait_jobs(widget)
    done = open_result(store).frames_done
    assert 2 <= done.sum() < 30, done.sum()
    assert "Cancelled" in f.status.text()
    assert f.resume_button.isEnabled() and f.layer_combo.isEnabled()

    widget.propagate(resume=True)
    wait_jobs(widget)
    done = open_result(store).frames_done
    assert done[:30].all() and not done[30:].any()

    # refine on frame 6, re-propagate from there
    viewer.dims.set_current_step(0, 6)
    points.add([6, 160, 120])
    wait_jobs(widget)
    f.from_current_check.setChecked(True)
    f.range_hi.setValue(9)
    widget.propagate()
    wait_jobs(widget)
    assert "Propagated 4 frames" in f.status.text()
    session_prompts = open_result(store).prompts
    assert sorted(session_prompts.frames()) == [0, 3, 6]


def test_classic_reef_results_dock_matches_measure(tracker, tmp_path, wait_jobs) -> None:
    from napari_sam2v.analysis import measure
    from napari_sam2v.samples import load_reef

    viewer, widget = tracker
    store = tmp_path / "reef_classic.zarr"
    _reef_session(viewer, widget, store, "classic")
    widget.load_prompts(load_reef().prompts_path)
    wait_jobs(widget)
    assert [o.name for o in widget.session.objects] == ["fish 1", "fish 2", "fish 3"]
    widget.propagate()
    wait_jobs(widget)
    assert open_result(store).frames_done.all()

    _, results = viewer.window.add_plugin_dock_widget("napari-sam2v", "Tracking results")
    assert results.result_combo.currentText() == widget.labels_layer.name
    # RGB camera video is not preselected for intensities (grey microscopy frames are)
    assert results.image_combo.currentText() == "none"
    assert results.progress.isHidden()
    results.measure()
    wait_jobs(results)
    expected = measure(open_result(store))
    # the measurement's progress, frame by frame, ends at every frame of the clip
    assert not results.progress.isHidden()
    assert results.progress.value() == results.progress.maximum() == 48
    assert results.progress.text() == "48 / 48 frames measured"
    pd.testing.assert_frame_equal(results.measurements.frames, expected.frames)
    pd.testing.assert_frame_equal(results.model.frame, expected.frames.reset_index(drop=True))
    # sorting by area, then clicking the first row jumps to that frame and object
    column = list(results.model.frame.columns).index("area_px")
    results.table.sortByColumn(column, 1)  # descending
    first = results.proxy.index(0, 0)
    results._row_clicked(first)
    biggest = expected.frames.sort_values("area_px", ascending=False).iloc[0]
    assert viewer.dims.current_step[0] == biggest["frame"]
    assert widget.labels_layer.selected_label == biggest["object_id"]
    assert results.plot.figure.axes and results.plot.figure.axes[0].lines

    tracks = results.show_tracks()
    assert tracks.data.shape[1] == 4 and len(tracks.data) == len(expected.frames)
    out = tmp_path / "export"
    results.out_edit.setText(str(out))
    for kind in ("csv", "coco", "tiff"):
        results.export(kind)
        wait_jobs(results)
    assert (out / "frames.csv").is_file() and (out / "coco.json").is_file()
    assert (out / "labels.tif").is_file()


def test_cells_sample_calibration_reaches_the_results(tracker, tmp_path, wait_jobs) -> None:
    from napari_sam2v.samples import load_cells

    viewer, widget = tracker
    viewer.open_sample("napari-sam2v", "cells")
    f = widget.form
    f.layer_combo.setCurrentText("T98G phase")
    f.engine_combo.setCurrentIndex(f.engine_combo.findData("classic"))
    assert widget.start_session(tmp_path / "cells.zarr")
    widget.load_prompts(load_cells().prompts_path)
    wait_jobs(widget)
    f.range_check.setChecked(True)
    f.range_hi.setValue(3)
    widget.propagate()
    wait_jobs(widget)
    assert open_result(tmp_path / "cells.zarr").frames_done[:4].all()
    _, results = viewer.window.add_plugin_dock_widget("napari-sam2v", "Tracking results")
    cal = results.calibration.calibration()
    assert (cal.pixel_size, cal.unit, cal.frame_interval, cal.time_unit) == (
        0.87,
        "um",
        10.2,
        "min",
    )
    results.calibration.pixel_size.value = 0.5  # the user corrects it
    results.image_combo.setCurrentText("T98G phase")
    results.measure()
    wait_jobs(results)
    frames = results.measurements.frames
    np.testing.assert_allclose(frames["area"], frames["area_px"] * 0.25)
    image = viewer.layers["T98G phase"].data
    row = frames.iloc[0]
    mask = (
        np.asarray(open_result(tmp_path / "cells.zarr").labels[int(row["frame"])])
        == row["object_id"]
    )
    np.testing.assert_allclose(row["mean_intensity"], image[int(row["frame"])][mask].mean())
    # the label TIFF carries the corrected calibration too, so Fiji agrees with the tables
    results.out_edit.setText(str(tmp_path / "export"))
    results.export("tiff")
    wait_jobs(results)
    import tifffile

    with tifffile.TiffFile(tmp_path / "export" / "labels.tif") as tif:
        num, den = tif.pages[0].tags["XResolution"].value
        assert den / num == pytest.approx(0.5)
        assert tif.imagej_metadata["unit"] == "micron"
    # "Save to result store" goes through the tracker's session, which holds the store
    results.show_tracks()
    other = viewer.add_image(np.zeros((4, 8, 8)), name="unrelated", scale=(1, 3, 3))
    clicks = np.array(widget.prompt_layers.points.data)
    results.save_calibration()
    wait_jobs(results)
    assert "Saved in the store: 0.5 um/pixel, 10.2 min/frame" in results.status.text()
    assert "5 open layers rescaled" in results.status.text()
    assert widget.session.calibration.pixel_size == 0.5
    # the store's layers (frames, labels, prompts, tracks) show the new scale, aligned
    store_layers = [
        viewer.layers["T98G phase"],
        widget.labels_layer,
        widget.prompt_layers.points,
        widget.prompt_layers.shapes,
        results.viewer.layers[f"{widget.labels_layer.name} tracks"],
    ]
    for layer in store_layers:  # time stays in frames: the slider counts frames
        np.testing.assert_allclose(layer.scale[[0, -2, -1]], (1.0, 0.5, 0.5))
        assert [str(u) for u in layer.units][-1] == "micrometer"
    np.testing.assert_array_equal(widget.prompt_layers.points.data, clicks)
    np.testing.assert_allclose(other.scale, (1, 3, 3))
    assert open_result(tmp_path / "cells.zarr").calibration.pixel_size == 0.5
    widget.session.add_object("late cell")  # a later save of the session keeps it
    assert open_result(tmp_path / "cells.zarr").calibration.pixel_size == 0.5
    widget.session.close()
    # with nobody holding the store, the dock takes its writer lock itself
    results.calibration.pixel_size.value = 0.25
    results.save_calibration()
    wait_jobs(results)
    reopened = open_result(tmp_path / "cells.zarr")
    assert reopened.calibration.pixel_size == 0.25
    assert viewer.layers["T98G phase"].scale[-1] == pytest.approx(0.25)
    assert reopened.metadata["calibration_history"][-1]["calibration"]["pixel_size"] == 0.5
    results.calibration.unit.value = "px"  # a size without a unit is refused, nothing written
    assert results.save_calibration() is None
    assert open_result(tmp_path / "cells.zarr").calibration.pixel_size == 0.25
    assert viewer.layers["T98G phase"].scale[-1] == pytest.approx(0.25)


def test_a_store_opened_in_napari_is_rescaled_by_a_saved_calibration(
    tmp_path, make_napari_viewer, wait_jobs
) -> None:
    """Without the tracker: the reader's layers follow the Results dock's save."""
    from napari_sam2v.io.prompt_files import Prompts
    from napari_sam2v.prompts import Prompt
    from napari_sam2v.store.pipeline import track
    from tests.conftest import make_disk_video

    frames, _ = make_disk_video(6, (64, 80), starts=((30.0, 40.0),), velocity=((0.0, 1.0),))
    prompts = Prompts([], [Prompt(0, 1, points=[[40, 30]], box=[30, 20, 50, 40])])
    track(frames, prompts, tmp_path / "r.zarr", engine=create_engine("classic"))
    viewer = make_napari_viewer()
    layers = viewer.open(str(tmp_path / "r.zarr"), plugin="napari-sam2v")
    assert [layer._type_string for layer in layers] == ["image", "labels", "points", "shapes"]
    other = viewer.add_image(np.zeros((6, 64, 80)), name="unrelated")
    _, results = viewer.window.add_plugin_dock_widget("napari-sam2v", "Tracking results")
    results.calibration.pixel_size.value = 2.5
    results.calibration.unit.value = "mm"
    results.save_calibration()
    wait_jobs(results)
    assert "4 open layers rescaled" in results.status.text()
    for layer in layers:
        np.testing.assert_allclose(layer.scale, (1.0, 2.5, 2.5))
        assert [str(u) for u in layer.units] == ["pixel", "millimeter", "millimeter"]
    np.testing.assert_array_equal(layers[2].data, [[0, 30, 40]])  # prompts stay on their pixels
    np.testing.assert_allclose(other.scale, (1, 1, 1))
    assert open_result(tmp_path / "r.zarr").calibration.pixel_size == 2.5


def test_results_dock_keeps_each_stores_tables_apart(tmp_path, make_napari_viewer, wait_jobs):
    """Picking another store drops the first one's tables; a save measures again."""
    import tifffile

    from napari_sam2v.io.prompt_files import Prompts
    from napari_sam2v.prompts import Prompt
    from napari_sam2v.store.pipeline import track
    from tests.conftest import make_disk_video

    frames, _ = make_disk_video(6, (64, 80), starts=((30.0, 40.0),), velocity=((0.0, 1.0),))
    prompts = Prompts([], [Prompt(0, 1, points=[[40, 30]], box=[30, 20, 50, 40])])
    for name, size in (("a", 2.0), ("b", 0.5)):
        track(
            frames,
            prompts,
            tmp_path / f"{name}.zarr",
            engine=create_engine("classic"),
            pixel_size=size,
            unit="um",
        )
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "a.zarr"), plugin="napari-sam2v")
    _, results = viewer.window.add_plugin_dock_widget("napari-sam2v", "Tracking results")
    assert results.out_edit.text() == str(tmp_path / "a_results")
    results.measure()
    wait_jobs(results)
    assert results.measurements.calibration.pixel_size == 2.0
    assert results.export_buttons["csv"].isEnabled()
    viewer.open(str(tmp_path / "b.zarr"), plugin="napari-sam2v")
    results.result_combo.setCurrentText("b objects")
    # a's tables are gone: nothing of a can be exported or drawn under b's name
    assert results.measurements is None
    assert results.model.rowCount() == 0
    assert not results.export_buttons["csv"].isEnabled()
    assert not results.tracks_button.isEnabled()
    assert results.out_edit.text() == str(tmp_path / "b_results")  # the offered folder follows
    assert results.calibration.calibration().pixel_size == 0.5
    assert results.image_combo.currentText() == "b video"  # b's frames, not a's
    results.export("tiff")  # b's label TIFF with b's calibration, not a's
    wait_jobs(results)
    with tifffile.TiffFile(tmp_path / "b_results" / "labels.tif") as tif:
        num, den = tif.pages[0].tags["XResolution"].value
        assert den / num == pytest.approx(0.5)
    assert results.status.text() == f"Exported 1 file to {tmp_path / 'b_results'}"
    results.out_edit.setText("  ")  # no folder: nothing lands in napari's working directory
    assert results.export("csv") is None
    assert results.status.text() == "Type or browse to an export folder first."
    # a folder the user typed is kept when the pick changes
    results.out_edit.setText(str(tmp_path / "mine"))
    results.result_combo.setCurrentText("a objects")
    assert results.out_edit.text() == str(tmp_path / "mine")
    # measured, then saved in another calibration: the tables and tracks follow
    results.measure()
    wait_jobs(results)
    tracks = results.show_tracks()
    old_speed = np.asarray(tracks.features["speed"], dtype=float)
    tracks.tail_length, tracks.colormap, tracks.opacity = 5, "viridis", 0.4  # the user's look
    area_px = results.measurements.frames["area_px"].to_numpy()
    results.calibration.pixel_size.value = 4.0
    results.save_calibration()
    wait_jobs(results)
    assert results.measurements.calibration.pixel_size == 4.0
    np.testing.assert_allclose(results.measurements.frames["area"], area_px * 16.0)
    assert "Measured again" in results.status.text()
    assert viewer.layers["a objects tracks"].tail_length == 5  # refilled, not re-made
    new_speed = np.asarray(tracks.features["speed"], dtype=float)
    assert (tracks.tail_length, tracks.colormap, tracks.opacity) == (5, "viridis", 0.4)
    assert tracks.color_by == "speed"
    assert tracks.scale[-1] == pytest.approx(4.0)  # and the new scale
    moving = old_speed > 0
    assert moving.any()
    np.testing.assert_allclose(new_speed[moving], old_speed[moving] * 2.0)
    assert results.model.rowCount() == len(results.measurements.frames)
    # intensities of a layer of another size: refused before the first frame
    viewer.add_image(np.zeros((3, 10, 10)), name="small")
    results.image_combo.setCurrentText("small")
    results.measure()
    wait_jobs(results)
    assert results.status.text().startswith("Stopped: image: shape (3, 10, 10) does not match")
    assert results.progress.isHidden()  # no busy bar left spinning


def test_a_click_that_finds_nothing_says_so(tracker, tmp_path, wait_jobs, monkeypatch) -> None:
    """A click on open water: the status names the empty mask; no tracks to draw."""
    from napari_sam2v._qt import _prompt_actions

    viewer, widget = tracker
    _reef_session(viewer, widget, tmp_path / "water.zarr", "classic")
    warned = []
    monkeypatch.setattr(_prompt_actions, "show_warning", warned.append)
    widget.click(0, 100.0, 150.0)
    wait_jobs(widget)
    assert warned == ["Frame 0: no mask for object 1 (click inside the object, add a box, "
                      "or Shift-click the background)"]  # fmt: skip
    assert widget.form.status.text() == (
        "classic on cpu. Frame 0: no mask for object 1 (click inside the object, add a box, "
        "or Shift-click the background)"
    )
    widget.form.range_check.setChecked(True)
    widget.form.range_hi.setValue(2)
    widget.propagate()
    wait_jobs(widget)
    _, results = viewer.window.add_plugin_dock_widget("napari-sam2v", "Tracking results")
    results.measure()
    wait_jobs(results)
    assert results.measurements.frames.empty
    assert not results.tracks_button.isEnabled()
    assert results.show_tracks() is None  # napari's Tracks layer cannot hold no points
    assert "no tracks to show" in results.status.text()
    assert not any(layer._type_string == "tracks" for layer in viewer.layers)
