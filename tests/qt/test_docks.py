"""The tracker and Results docks opened together in a laptop-sized viewer stay usable."""

from __future__ import annotations

import pytest
from qtpy.QtCore import QPoint
from qtpy.QtWidgets import QWidget

pytestmark = pytest.mark.gui

_TRACKER, _RESULTS = "SAM 2 video tracker", "Tracking results"


def _shown_whole(widget: QWidget) -> bool:
    """Whether the whole widget is on screen, inside its window, not clipped or scrolled."""
    window = widget.window()
    top_left = widget.mapTo(window, QPoint(0, 0))
    return (
        widget.isVisible()
        and widget.visibleRegion().boundingRect().size() == widget.size()
        and top_left.y() >= 0
        and top_left.y() + widget.height() <= window.height()
    )


@pytest.mark.parametrize("first", [_TRACKER, _RESULTS])
def test_both_docks_get_the_full_height_as_tabs(make_napari_viewer, qtbot, first) -> None:
    """napari stacked the second dock below the first at about 130 px (the tracker's
    form unusable); as tabs each dock has the full height, and the run buttons of the
    tracker stay in view below its scrolled form."""
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(1000, 950)
    second = _RESULTS if first == _TRACKER else _TRACKER
    docks, widgets = {}, {}
    for name in (first, second):
        docks[name], widgets[name] = viewer.window.add_plugin_dock_widget("napari-sam2v", name)
    qtbot.waitUntil(lambda: docks[first] in window.tabifiedDockWidgets(docks[second]))
    # the dock opened last is in front, the other behind its tab
    qtbot.waitUntil(lambda: _shown_whole(docks[second]))
    qtbot.waitUntil(lambda: docks[first].visibleRegion().isEmpty())
    docks[_TRACKER].raise_()  # the user clicks the tracker's tab
    tracker = widgets[_TRACKER]
    qtbot.waitUntil(lambda: _shown_whole(docks[_TRACKER]))
    assert docks[_TRACKER].height() > 0.8 * window.height()
    for button in (tracker.form.propagate_button, tracker.form.cancel_button):
        assert _shown_whole(button)
    assert _shown_whole(tracker.form.status)
    docks[_RESULTS].raise_()
    qtbot.waitUntil(lambda: _shown_whole(docks[_RESULTS]))
    assert docks[_RESULTS].height() > 0.8 * window.height()
    assert _shown_whole(widgets[_RESULTS].measure_button)


def test_a_dock_the_user_moved_elsewhere_is_left_alone(make_napari_viewer, qtbot) -> None:
    from napari_sam2v._qt.results_widget import ResultsWidget

    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    tracker_dock, _ = viewer.window.add_plugin_dock_widget("napari-sam2v", _TRACKER)
    results = ResultsWidget(viewer)
    results_dock = viewer.window.add_dock_widget(results, name=_RESULTS, area="left")
    qtbot.waitUntil(results.isVisible)
    qtbot.wait(100)
    assert window.tabifiedDockWidgets(tracker_dock) == []
    assert results_dock.widget().isVisible() and tracker_dock.widget().isVisible()
