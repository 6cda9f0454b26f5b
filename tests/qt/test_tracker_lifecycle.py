"""The tracker dock's life: prompt-layer modes after jobs, frames on screen, closing the dock."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam2v.store import open_result

pytestmark = pytest.mark.gui


def _start(viewer, widget, frames, path) -> None:
    viewer.add_image(frames, name="disks")
    widget.form.layer_combo.setCurrentText("disks")
    widget.form.engine_combo.setCurrentIndex(widget.form.engine_combo.findData("classic"))
    assert widget.start_session(path)


def test_the_prompt_layers_keep_their_mode_through_jobs(tracker, disk_video, tmp_path, wait_jobs):
    viewer, widget = tracker
    _start(viewer, widget, disk_video[0], tmp_path / "s.zarr")
    points, shapes = widget.prompt_layers.points, widget.prompt_layers.shapes
    assert (points.mode, shapes.mode) == ("add", "add_rectangle")
    points.add([0, 36, 30])  # a click: a job runs, the layers are locked meanwhile
    wait_jobs(widget)
    assert widget.session.frame_prompt(0, 1) is not None
    widget.propagate()
    wait_jobs(widget)
    # napari put the locked layers in pan/zoom; clicks must add points again
    assert (points.mode, shapes.mode) == ("add", "add_rectangle")
    assert points.editable and shapes.editable
    assert widget.form.status.text() == "Propagated 12 frames."


def test_this_frame_is_the_videos_frame_beside_a_layer_on_another_time_axis(
    tracker, disk_video, tmp_path
):
    viewer, widget = tracker
    frames = disk_video[0]
    # the video opened by a reader that scales time (minutes), beside a layer in frames:
    # napari's slider then counts the finer steps, and step 7 is not frame 7
    viewer.add_image(frames, name="disks", scale=(10.2, 1, 1))
    viewer.add_image(np.zeros((len(frames), 8, 8), np.uint8), name="in frames")
    widget.form.layer_combo.setCurrentText("disks")
    widget.form.engine_combo.setCurrentIndex(widget.form.engine_combo.findData("classic"))
    assert widget.start_session(tmp_path / "s.zarr")
    widget.jump_to_frame(7)
    assert widget.current_frame() == 7
    assert viewer.dims.current_step[0] != 7
    assert round(widget.image_layer.world_to_data(viewer.dims.point)[0]) == 7
    viewer.dims.set_current_step(0, 20)  # the slider moved by hand: world 20 is frame 2
    assert widget.current_frame() == 2


def test_closing_the_dock_closes_the_session(tracker, disk_video, tmp_path, wait_jobs):
    viewer, widget = tracker
    path = tmp_path / "s.zarr"
    _start(viewer, widget, disk_video[0], path)
    points = widget.prompt_layers.points
    points.add([0, 36, 30])
    wait_jobs(widget)
    viewer.window.remove_dock_widget(widget)  # what the dock's close button does
    wait_jobs(widget)
    assert widget.session is None
    assert not (path / "sam2v" / "lock.json").exists()  # the store can be reopened
    before = open_result(path).prompts
    points.add([3, 90, 70])  # the layer stays, but drives nothing any more
    assert open_result(path).prompts == before
    _, again = viewer.window.add_plugin_dock_widget("napari-sam2v", "SAM 2 video tracker")
    again.form.layer_combo.setCurrentText("disks")
    try:
        assert again.open_store(path)
    finally:
        if again.session is not None:
            again.session.close()


def test_reopening_a_store_shows_its_engine(tracker, disk_video, tmp_path, wait_jobs):
    viewer, widget = tracker
    path = tmp_path / "s.zarr"
    _start(viewer, widget, disk_video[0], path)
    widget.form.feature_combo.setCurrentIndex(widget.form.feature_combo.findData("texture"))
    widget.prompt_layers.points.add([0, 36, 30])
    wait_jobs(widget)
    widget._detach()
    widget.form.engine_combo.setCurrentIndex(widget.form.engine_combo.findData("sam2"))
    assert widget.open_store(path)
    assert widget.form.engine_combo.currentData() == "classic"
    assert widget.form.feature_combo.currentData() == "texture"
    widget.prompt_layers.points.add([2, 36, 30])  # continues with classic, no model load
    wait_jobs(widget)
    assert widget.session.engine.info.engine == "classic"


def test_removing_the_result_layer_is_explained(tracker, disk_video, tmp_path, monkeypatch, qtbot):
    import napari_sam2v._qt._lifecycle as module

    viewer, widget = tracker
    _start(viewer, widget, disk_video[0], tmp_path / "s.zarr")
    said: list[str] = []
    monkeypatch.setattr(module, "show_warning", said.append)
    viewer.layers.remove(widget.labels_layer)
    qtbot.waitUntil(lambda: bool(said), timeout=5_000)
    assert "Reopen store" in said[0]


def test_reopening_a_store_opened_in_napari_keeps_one_copy_of_its_layers(
    tracker, disk_video, tmp_path, wait_jobs
):
    viewer, widget = tracker
    path = tmp_path / "s.zarr"
    _start(viewer, widget, disk_video[0], path)
    widget.prompt_layers.points.add([0, 36, 30])
    wait_jobs(widget)
    widget._detach()
    viewer.layers.clear()
    viewer.open(str(path), plugin="napari-sam2v")  # File > Open: frames, labels, prompts
    widget.form.layer_combo.setCurrentText("s video")
    assert widget.form.store_edit.text() == str(path)  # the store it came from
    assert widget.open_store(widget.form.store_edit.text())
    names = [layer.name for layer in viewer.layers]
    assert names.count("s video") == 1 and "s objects" not in names
    assert sum(layer._type_string == "labels" for layer in viewer.layers) == 1


def test_measuring_a_store_still_being_tracked_says_which_frames_are_missing(
    tracker, disk_video, tmp_path, wait_jobs
):
    import threading

    from napari_sam2v.io.prompt_files import Prompts
    from napari_sam2v.prompts import Prompt
    from napari_sam2v.store.pipeline import track

    viewer, _ = tracker
    stop = threading.Event()
    prompts = Prompts([], [Prompt(0, 1, points=[[30, 36]])])

    def stop_after_five(info) -> None:
        if info.done == 5:
            stop.set()

    track(disk_video[0], prompts, tmp_path / "p.zarr", engine="classic", cancel=stop,
          progress=stop_after_five)  # fmt: skip
    viewer.open(str(tmp_path / "p.zarr"), plugin="napari-sam2v")
    _, results = viewer.window.add_plugin_dock_widget("napari-sam2v", "Tracking results")
    results.measure()
    wait_jobs(results)
    assert "Not tracked yet: frames 5-11 (measure again later)" in results.status.text()
    results.calibration.pixel_size.value = 0.5  # a size without its unit
    results.calibration.unit.value = "px"
    results.measure()
    assert results.status.text().startswith("Not measured: calibration: give the unit")


def test_closing_the_viewer_closes_the_session(make_napari_viewer, disk_video, tmp_path, qtbot):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam2v", "SAM 2 video tracker")
    path = tmp_path / "s.zarr"
    _start(viewer, widget, disk_video[0], path)
    session = widget.session
    assert (path / "sam2v" / "lock.json").exists()
    viewer.close()  # Qt deletes the dock with the window: no closeEvent reaches it
    qtbot.waitUntil(lambda: not (path / "sam2v" / "lock.json").exists(), timeout=20_000)
    assert session.store is None or session.store.closed


def test_closing_the_viewer_mid_propagation_ends_the_run_and_frees_the_store(
    make_napari_viewer, disk_video, tmp_path, qtbot, monkeypatch, wait_jobs
):
    _slow_frames(monkeypatch)
    viewer = make_napari_viewer(show=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam2v", "SAM 2 video tracker")
    path = tmp_path / "s.zarr"
    _propagating(viewer, widget, disk_video[0], path, qtbot, wait_jobs)
    viewer.close()
    _assert_stopped_and_freed(path)  # before napari went on


def _shown_tracker(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam2v", "SAM 2 video tracker")
    qtbot.waitUntil(widget.isVisible)  # as it is before a user can close the window
    return viewer, widget


def _answer_confirm_close(monkeypatch, answer) -> list[str]:
    """Turn napari's 'confirm close' setting on; its dialog answers ``answer``."""
    from napari._qt.dialogs.confirm_close_dialog import ConfirmCloseDialog
    from napari.settings import get_settings

    asked: list[str] = []

    def exec_(dialog) -> int:
        asked.append(dialog.windowTitle())
        return answer

    monkeypatch.setattr(get_settings().application, "confirm_close_window", True)
    monkeypatch.setattr(ConfirmCloseDialog, "exec_", exec_)
    return asked


def _click_close_button(viewer) -> None:
    """What the window manager does for the window's close button (a spontaneous close)."""
    viewer.window._qt_window.windowHandle().close()


def test_cancelling_the_viewers_close_keeps_the_session(
    make_napari_viewer, disk_video, tmp_path, qtbot, monkeypatch, wait_jobs
):
    from qtpy.QtWidgets import QDialog

    viewer, widget = _shown_tracker(make_napari_viewer, qtbot)
    path = tmp_path / "s.zarr"
    _start(viewer, widget, disk_video[0], path)
    asked = _answer_confirm_close(monkeypatch, QDialog.DialogCode.Rejected)
    _click_close_button(viewer)
    assert asked and viewer.window._qt_window.isVisible()  # the user said no
    assert widget.session is not None and (path / "sam2v" / "lock.json").exists()
    widget.prompt_layers.points.add([0, 36, 30])  # the tracker works on
    wait_jobs(widget)
    widget.propagate()
    wait_jobs(widget)
    assert widget.form.status.text() == "Propagated 12 frames."
    widget.session.close()


@pytest.mark.parametrize("confirmed", [False, True], ids=["cancelled", "confirmed"])
def test_the_viewers_close_mid_propagation_follows_the_users_answer(
    make_napari_viewer, disk_video, tmp_path, qtbot, monkeypatch, wait_jobs, confirmed
):
    """Cancelled, the run goes on to its end; confirmed, it ends after its frame, saved."""
    from qtpy.QtWidgets import QDialog

    _slow_frames(monkeypatch)
    viewer, widget = _shown_tracker(make_napari_viewer, qtbot)
    path = tmp_path / "s.zarr"
    _propagating(viewer, widget, disk_video[0], path, qtbot, wait_jobs)
    code = QDialog.DialogCode.Accepted if confirmed else QDialog.DialogCode.Rejected
    asked = _answer_confirm_close(monkeypatch, code)
    _click_close_button(viewer)  # napari asks: a task is running
    assert asked and viewer.window._qt_window.isVisible() is not confirmed
    if confirmed:
        # napari quits the running workers once the user confirmed: the run still ends
        # after its frame, saved, rather than be left half-way holding the store
        _assert_stopped_and_freed(path)
        del viewer.window._qt_window  # deleted by Qt: napari would quit now, not close it again
        return
    wait_jobs(widget)
    assert widget.form.status.text() == "Propagated 12 frames."
    assert open_result(path).frames_done.all()
    widget.session.close()


def _propagating(viewer, widget, frames, path, qtbot, wait_jobs) -> None:
    """Start a session, click an object and propagate; return once 2 frames are done."""
    _start(viewer, widget, frames, path)
    widget.prompt_layers.points.add([0, 36, 30])
    wait_jobs(widget)
    widget.propagate()
    qtbot.waitUntil(lambda: widget.form.progress.value() >= 2, timeout=20_000)


def _assert_stopped_and_freed(path) -> None:
    """The run stopped part-way, recorded as cancelled, and the store is unlocked."""
    assert not (path / "sam2v" / "lock.json").exists()
    result = open_result(path)
    assert result.status == "cancelled" and 2 <= result.frames_done.sum() < 12


def _slow_frames(monkeypatch) -> None:
    """The classic engine takes 0.3 s a frame: a propagation is still running when closed."""
    import time

    from napari_sam2v.engines.classic import ClassicEngine

    slow = ClassicEngine.propagate

    def one_frame_at_a_time(self, **options):
        for result in slow(self, **options):
            time.sleep(0.3)
            yield result

    monkeypatch.setattr(ClassicEngine, "propagate", one_frame_at_a_time)


def test_closing_the_dock_mid_propagation_ends_the_run_and_frees_the_store(
    tracker, disk_video, tmp_path, qtbot, monkeypatch, wait_jobs
):
    """The dock's ✕ cancels the run after its frame, then saves and lets go of the store."""
    _slow_frames(monkeypatch)
    viewer, widget = tracker
    path = tmp_path / "s.zarr"
    _propagating(viewer, widget, disk_video[0], path, qtbot, wait_jobs)
    viewer.window.remove_dock_widget(widget)  # what the dock's close button does
    qtbot.waitUntil(lambda: widget.session is None, timeout=20_000)
    _assert_stopped_and_freed(path)


def test_closing_the_viewer_with_the_dock_floating_mid_propagation_frees_the_store(
    make_napari_viewer, disk_video, tmp_path, qtbot, monkeypatch, wait_jobs
):
    """A dock first shown floating is a window of its own: the viewer's window is watched."""
    _slow_frames(monkeypatch)
    viewer = make_napari_viewer(show=False)
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam2v", "SAM 2 video tracker")
    widget.parentWidget().setFloating(True)
    viewer.show()
    qtbot.waitUntil(widget.isVisible)
    assert widget.window() is widget.parentWidget()  # floating
    path = tmp_path / "s.zarr"
    _propagating(viewer, widget, disk_video[0], path, qtbot, wait_jobs)
    viewer.close()
    _assert_stopped_and_freed(path)  # before napari went on
