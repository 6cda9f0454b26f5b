"""The tracker dock on a 16-bit grey video with the classic engine (fast, no weights)."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import zarr

from napari_sam2v.store import open_result
from napari_sam2v.types import default_color

pytestmark = pytest.mark.gui


def _array_dir(array: zarr.Array) -> Path:
    return (Path(array.store.root) / array.path).resolve()


def _start(viewer, widget, frames, path, engine: str = "classic") -> None:
    viewer.add_image(frames, name="disks")
    widget.form.layer_combo.setCurrentText("disks")
    index = widget.form.engine_combo.findData(engine)
    widget.form.engine_combo.setCurrentIndex(index)
    assert widget.start_session(path)


def test_click_preview_undo_propagate_paint(tracker, disk_video, tmp_path, wait_jobs) -> None:
    viewer, widget = tracker
    frames, truth = disk_video
    store = tmp_path / "disks.zarr"
    _start(viewer, widget, frames, store)
    labels_layer = widget.labels_layer
    # the Labels layer IS the store's zarr array
    assert labels_layer.data is widget.session.store.labels
    on_disk = open_result(store).labels_array(writable=True)
    assert isinstance(labels_layer.data, zarr.Array)
    assert _array_dir(on_disk) == _array_dir(labels_layer.data)

    points = widget.prompt_layers.points
    viewer.dims.set_current_step(0, 2)
    points.add([2, 36, 30])  # what a click in add mode does
    wait_jobs(widget)
    assert labels_layer.data[2][36, 30] == 1
    assert len(widget.click_latencies) == 1
    assert widget.session.frame_prompt(2, 1).labels == (1,)
    pixels = int(np.count_nonzero(labels_layer.data[2] == 1))
    # the engine's name (no model for classic), then what the click gave
    assert widget.form.status.text() == f"classic on cpu. Frame 2: object 1 {pixels:,} px"

    widget.form.background_check.setChecked(True)
    points.add([2, 5, 5])
    wait_jobs(widget)
    assert widget.session.frame_prompt(2, 1).labels == (1, 0)
    assert list(points.features["label"]) == [1, 0]
    widget.form.background_check.setChecked(False)

    # Shift-click (the press callback sees the modifier before napari adds the point)
    press = SimpleNamespace(modifiers=("Shift",), type="mouse_press")
    next(widget.prompt_layers._drag(points, press))
    points.add([2, 90, 120])
    wait_jobs(widget)
    assert widget.session.frame_prompt(2, 1).labels == (1, 0, 0)
    widget.undo()
    wait_jobs(widget)

    widget.undo()
    wait_jobs(widget)
    assert widget.session.frame_prompt(2, 1).labels == (1,)
    assert len(points.data) == 1
    widget.redo()
    wait_jobs(widget)
    assert len(points.data) == 2

    widget.propagate()
    wait_jobs(widget)
    result = open_result(store)
    assert result.frames_done.all()
    iou = [
        np.logical_and(result.labels[t].compute() == 1, truth[t] == 1).sum()
        / np.logical_or(result.labels[t].compute() == 1, truth[t] == 1).sum()
        for t in range(len(truth))
    ]
    assert min(iou) > 0.7, iou
    assert "Propagated 12 frames" in widget.form.status.text()

    # napari's paint tool writes into the store on disk
    labels_layer.paint((7, 80, 20), 3, refresh=True)
    assert open_result(store).labels_array(writable=False)[7, 80, 20] == 3
    assert widget.form.propagate_button.isEnabled()


def test_deleting_and_dragging_prompts_in_the_layers(
    tracker, disk_video, tmp_path, wait_jobs
) -> None:
    viewer, widget = tracker
    _start(viewer, widget, disk_video[0], tmp_path / "edits.zarr")
    session, layers = widget.session, widget.prompt_layers
    points, shapes = layers.points, layers.shapes
    points.add([2, 30, 30])
    wait_jobs(widget)
    widget.form.background_check.setChecked(True)
    points.add([2, 5, 5])
    wait_jobs(widget)
    widget.form.background_check.setChecked(False)
    assert session.frame_prompt(2, 1).labels == (1, 0)

    # napari's "delete selected points": the background click is no longer a prompt
    points.selected_data = {1}
    points.remove_selected()
    wait_jobs(widget)
    assert session.frame_prompt(2, 1).points == ((30.0, 30.0),)
    assert len(points.data) == 1 and widget.labels_layer.data[2][30, 30] == 1
    widget.undo()
    wait_jobs(widget)
    assert session.frame_prompt(2, 1).labels == (1, 0) and len(points.data) == 2

    # a drag in select mode moves the click: the mask follows it
    points.mode = "select"
    event = SimpleNamespace(modifiers=(), type="mouse_press")
    drag = layers._drag(points, event)
    next(drag)
    event.type = "mouse_move"
    next(drag)
    moved = np.array(points.data)
    moved[0, 1:] = [30, 48]
    with points.events.data.blocker():  # what napari's drag does: data changes in place
        points.data = moved
    event.type = "mouse_release"
    with pytest.raises(StopIteration):
        next(drag)
    wait_jobs(widget)
    assert session.frame_prompt(2, 1).points == ((48.0, 30.0), (5.0, 5.0))
    assert session.can_undo and session._undo[-1].description == "edited clicks on frame 2"

    # a deleted box is no longer a prompt; the clicks on that frame stay
    shapes.add_rectangles(np.array([[[2, 20, 20], [2, 20, 40], [2, 40, 40], [2, 40, 20]]]))
    wait_jobs(widget)
    assert session.frame_prompt(2, 1).box == (20.0, 20.0, 40.0, 40.0)
    shapes.selected_data = {0}
    shapes.remove_selected()
    wait_jobs(widget)
    assert session.frame_prompt(2, 1).box is None
    assert len(session.frame_prompt(2, 1).points) == 2 and len(shapes.data) == 0

    # deleting every point of a frame removes the prompt there
    points.selected_data = {0, 1}
    points.remove_selected()
    wait_jobs(widget)
    assert session.frame_prompt(2, 1) is None and len(points.data) == 0
    assert not (np.asarray(widget.labels_layer.data[2]) == 1).any()


def test_bad_click_is_a_notification_and_state_is_kept(
    tracker, disk_video, tmp_path, wait_jobs, monkeypatch
) -> None:
    from napari_sam2v._qt import tracker_widget
    from napari_sam2v.io.prompt_files import Prompts
    from napari_sam2v.prompts import Prompt
    from napari_sam2v.store.pipeline import track

    viewer, widget = tracker
    _start(viewer, widget, disk_video[0], tmp_path / "bad.zarr")
    messages = []
    widget.jobs.failed.connect(messages.append)
    widget.click(2, 500.0, 30.0)
    wait_jobs(widget)
    assert messages and "outside" in messages[0]
    assert widget.form.status.text().endswith(f"Stopped: {messages[0]}")  # not a stale line
    widget.propagate()  # nothing to propagate: said in the status line too
    wait_jobs(widget)
    assert widget.form.status.text() == "Stopped: nothing to propagate: add a prompt first"
    assert len(widget.session.prompts) == 0
    assert len(widget.prompt_layers.points.data) == 0
    assert widget.form.layer_combo.isEnabled()

    # reopening with the wrong video or a missing store: a notification, nothing changed
    store = widget.session.store.path
    errors = []
    monkeypatch.setattr(tracker_widget, "show_error", errors.append)
    session = widget.session
    assert not widget.start_session(store)  # its own store again
    clicks = Prompts([], [Prompt(0, 1, points=[[30, 36]])])
    track(disk_video[0], clicks, tmp_path / "other.zarr", engine="classic", end=1)
    assert not widget.start_session(tmp_path / "other.zarr")  # another existing store
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("keep")
    assert not widget.start_session(tmp_path / "notes")  # a folder that is no store
    assert errors[:2] == [
        f"This session already writes to {store}: type another store path",
        f"{tmp_path / 'other.zarr'} already holds a result store: press Reopen store to "
        "continue it, or type another store path to start afresh",
    ]
    assert "is not a napari-sam2v result store" in errors[2]
    assert not widget.open_store(tmp_path / "nothing.zarr")
    # a mistyped path costs nothing: the session and its layers are still there
    assert widget.session is session and widget.labels_layer in viewer.layers
    assert widget.open_store(store)  # reloading its own store lets go of it first
    assert widget.session is not session and widget.session.store.path == store
    assert (tmp_path / "notes" / "a.txt").read_text() == "keep"
    widget._detach()
    viewer.add_image(disk_video[0][:4], name="short")
    widget.form.layer_combo.setCurrentText("short")
    assert not widget.open_store(store)
    assert not widget.open_store(tmp_path / "nothing.zarr")
    assert widget.session is None
    assert open_result(store).labels.shape == disk_video[0].shape


def test_box_prefetch_errors_delete_and_reopen(tracker, disk_video, tmp_path, wait_jobs) -> None:
    viewer, widget = tracker
    frames, _ = disk_video
    store = tmp_path / "boxes.zarr"
    _start(viewer, widget, frames, store)
    f = widget.form
    # an expected error while nothing is prompted: one notification, controls back on
    messages = []
    widget.jobs.failed.connect(messages.append)
    widget.propagate()
    wait_jobs(widget)
    assert messages == ["nothing to propagate: add a prompt first"]
    assert f.propagate_button.isEnabled() and not f.cancel_button.isEnabled()

    # a rectangle on the boxes layer is a box prompt
    shapes = widget.prompt_layers.shapes
    shapes.add_rectangles(np.array([[[4, 58, 78], [4, 58, 102], [4, 82, 102], [4, 82, 78]]]))
    wait_jobs(widget)
    assert widget.session.frame_prompt(4, 1).box == (78.0, 58.0, 102.0, 82.0)
    assert widget.labels_layer.data[4][70, 90] == 1
    assert len(shapes.data) == 1

    # moving to another frame prefetches it in the background
    prefetched = []
    widget.session.prefetch = prefetched.append
    assert widget.session.engine_loaded
    viewer.dims.set_current_step(0, 9)
    from qtpy.QtCore import QCoreApplication

    deadline = time.perf_counter() + 5
    while not prefetched and time.perf_counter() < deadline:
        QCoreApplication.processEvents()
    wait_jobs(widget)
    assert prefetched == [9]

    # a second object, renamed, then deleted with its pixels
    widget.add_object()
    second = widget.session.current_object
    widget._objects_call("rename_object", second, "=crab")
    assert f.objects.list.item(1).text() == "=crab"
    widget.click(6, 48, 30)  # disk 1 has moved to x = 48 on frame 6
    wait_jobs(widget)
    assert widget.labels_layer.data[6][30, 48] == second
    widget.delete_object(second)
    wait_jobs(widget)
    assert second not in np.unique(widget.labels_layer.data[6])
    assert [o.id for o in widget.session.objects] == [1]

    # close and reopen: objects and prompts come back, as points and boxes
    widget._detach()
    assert widget.session is None and "SAM2 result" not in viewer.layers
    assert widget.open_store(store)
    assert widget.session.frame_prompt(4, 1).box == (78.0, 58.0, 102.0, 82.0)
    assert len(widget.prompt_layers.shapes.data) == 1
    assert widget.labels_layer.data[4][70, 90] == 1


def test_precision_and_appearance_choices_reach_the_engines(
    tracker, disk_video, tmp_path, wait_jobs
) -> None:
    viewer, widget = tracker
    frames, _ = disk_video
    f = widget.form
    # classic: the appearance combo is live, the SAM 2 ones are not
    f.engine_combo.setCurrentIndex(f.engine_combo.findData("classic"))
    assert f.feature_combo.isEnabled() and not f.precision_combo.isEnabled()
    f.feature_combo.setCurrentIndex(f.feature_combo.findData("bright"))
    _start(viewer, widget, frames, tmp_path / "bright.zarr")
    widget.load_model()
    wait_jobs(widget)
    assert widget.session.engine.info.settings["feature"] == "bright"
    # sam2: the precision combo is live and its value is passed on
    f.engine_combo.setCurrentIndex(f.engine_combo.findData("sam2"))
    assert f.precision_combo.isEnabled() and not f.feature_combo.isEnabled()
    from napari_sam2v._qt._models import available_devices
    from napari_sam2v.engines.sam2 import DEVICES, PRECISIONS

    offered = [f.precision_combo.itemData(i) for i in range(f.precision_combo.count())]
    assert offered == list(PRECISIONS)  # one list for the engine, the CLI and the dock
    assert f.precision_combo.currentData() == "auto"  # the engine's default
    devices = [f.device_combo.itemData(i) for i in range(f.device_combo.count())]
    assert devices == list(DEVICES) and set(available_devices()) == set(DEVICES)
    f.precision_combo.setCurrentIndex(f.precision_combo.findData("mixed"))
    f.device_combo.setCurrentIndex(f.device_combo.findData("cpu"))
    from napari_sam2v._qt._models import engine_choice

    engine, options = engine_choice(widget.form)
    assert engine == "sam2"
    assert options["precision"] == "mixed" and options["device"] == "cpu"
    assert "feature" not in options


def test_devices_this_machine_lacks_are_disabled(tracker, monkeypatch) -> None:
    from napari_sam2v._qt import _models

    _, widget = tracker
    f = widget.form
    f.engine_combo.setCurrentIndex(f.engine_combo.findData("sam2"))
    f.device_combo.setCurrentIndex(f.device_combo.findData("cuda"))
    _models.mark_devices(f, {"auto": True, "cpu": True, "cuda": False, "mps": False})
    items = f.device_combo.model()
    enabled = {
        f.device_combo.itemData(i): items.item(i).isEnabled() for i in range(f.device_combo.count())
    }
    assert enabled == {"auto": True, "cpu": True, "cuda": False, "mps": False}
    assert f.device_combo.currentData() == "auto"  # stepped off the missing device
    assert "no CUDA device" in f.device_combo.itemData(f.device_combo.findData("cuda"), 3)
    _models.mark_devices(f, {"auto": True, "cpu": True, "cuda": True, "mps": False})
    assert items.item(f.device_combo.findData("cuda")).isEnabled()
    # without torch imported, the check must not import it
    monkeypatch.delitem(__import__("sys").modules, "torch", raising=False)
    found = _models.available_devices()
    assert found["cpu"] and found["auto"]
    assert "torch" not in __import__("sys").modules


def test_object_delete_asks_first(tracker, disk_video, tmp_path, monkeypatch, wait_jobs) -> None:
    from qtpy.QtWidgets import QMessageBox

    viewer, widget = tracker
    _start(viewer, widget, disk_video[0], tmp_path / "ask.zarr")
    panel, asked, requested = widget.form.objects, [], []
    panel.delete_requested.connect(requested.append)

    def answer(button):
        return lambda *args, **_kw: asked.append(args[2]) or button

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Cancel))
    panel.delete_button.click()
    assert "cannot be undone" in asked[0] and requested == []
    assert [o.id for o in widget.session.objects] == [1]
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    panel.delete_button.click()
    wait_jobs(widget)
    assert requested == [1] and widget.session.objects == []


def test_model_download_shows_its_bytes(
    tracker, disk_video, tmp_path, monkeypatch, wait_jobs, qtbot
) -> None:
    import napari_sam2v.engines.sam2 as sam2_package
    from napari_sam2v.engines import EngineInfo

    viewer, widget = tracker
    _start(viewer, widget, disk_video[0], tmp_path / "download.zarr", engine="sam2")
    f = widget.form
    f.model_combo.setCurrentIndex(f.model_combo.findData("sam2.1-tiny"))
    assert not f.model_combo.currentText().endswith("(cached)")  # no weights here
    mib = 2**20

    def fake_download(name, *, progress, on_progress):
        for done in (0, 40 * mib, 149 * mib):  # from the worker thread, as the hub does
            on_progress(done, 149 * mib if done else 0)
        return tmp_path

    shown: list[tuple[int, int, str]] = []
    widget._download.progressed.connect(
        lambda *_: shown.append((f.progress.value(), f.progress.maximum(), f.progress.format()))
    )
    monkeypatch.setattr(sam2_package, "download_model", fake_download)
    monkeypatch.setattr(
        widget.session,
        "load_engine",
        lambda: EngineInfo(engine="sam2", model="sam2.1-tiny", device="cpu"),
    )
    widget.load_model()
    wait_jobs(widget)
    # the three reports cross threads as queued signals: on a loaded machine they can
    # land after the job counts as finished
    qtbot.waitUntil(lambda: len(shown) == 3, timeout=30_000)
    qtbot.waitUntil(lambda: f.progress.format() == "%v / %m frames", timeout=30_000)
    assert shown[0][1] == 0  # busy until the size is known
    assert shown[1:] == [(40, 149, "%v / %m MiB"), (149, 149, "%v / %m MiB")]
    assert f.progress.format() == "%v / %m frames"  # back to propagation
    assert "sam2 sam2.1-tiny on cpu" in f.status.text()


def test_the_brush_paints_the_current_object_and_new_labels_show(
    tracker, disk_video, tmp_path
) -> None:
    """napari's paint brush follows the dock's object; a label painted by hand is visible."""
    viewer, widget = tracker
    _start(viewer, widget, disk_video[0], tmp_path / "paint.zarr")
    labels = widget.labels_layer
    assert labels.selected_label == 1
    widget.add_object()
    assert widget.session.current_object == 2 and labels.selected_label == 2
    widget._set_current_object(1)  # what picking it in the objects list does
    assert labels.selected_label == 1
    colors = labels.colormap.map(np.array([0, 1, 2, 7]))
    assert colors[0][3] == 0  # background stays transparent
    first = default_color(1)  # object 1's colour
    np.testing.assert_allclose(colors[1][:3], [int(first[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    assert colors[3][3] == 1 and colors[3][:3].min() > 0.8  # an id no object has: light grey


def test_a_large_frame_copy_runs_in_a_worker(
    tracker, disk_video, tmp_path, monkeypatch, wait_jobs
) -> None:
    """Frames with no source file are copied into the store without blocking the viewer."""
    from napari_sam2v._qt import tracker_widget

    viewer, widget = tracker
    monkeypatch.setattr(tracker_widget, "COPY_IN_WORKER", 1024)  # the test video is "large"
    _start(viewer, widget, disk_video[0], tmp_path / "first.zarr")  # _start asserts True
    first = widget.session
    assert widget.jobs.busy and "Copying 0 MiB of frames" in widget.form.status.text()
    wait_jobs(widget)
    assert widget.session is not None and widget.session is not first
    assert widget.labels_layer.data is widget.session.store.labels
    stored = open_result(tmp_path / "first.zarr")
    assert stored.image_copied  # reopenable without the layer
    np.testing.assert_array_equal(np.asarray(stored.open_image()), disk_video[0])
    errors = []
    monkeypatch.setattr(tracker_widget, "show_error", errors.append)
    session = widget.session
    assert widget.start_session(tmp_path / "first.zarr", overwrite=False) is False  # its own
    widget.jobs.failed.connect(errors.append)
    widget.start_session(tmp_path / "other.zarr")
    wait_jobs(widget)
    assert widget.session is not session and widget.session.store.path.name == "other.zarr"
    widget.start_session(tmp_path / "first.zarr")  # taken: the worker's error, GUI wording
    wait_jobs(widget)
    assert "press Reopen store to continue it" in errors[-1]
    assert widget.session.store.path.name == "other.zarr"  # still open
