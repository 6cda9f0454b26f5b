"""Fixtures for the dock-widget tests (pytest-qt + napari's ``make_napari_viewer``)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")


@pytest.fixture
def wait_jobs(qtbot) -> Callable[..., None]:
    """Wait until a widget's worker jobs are all finished (Qt events keep flowing)."""

    def wait(widget, timeout: float = 60.0) -> None:
        qtbot.waitUntil(lambda: not widget.jobs.active, timeout=int(timeout * 1000))
        deadline = time.perf_counter() + 0.2
        while time.perf_counter() < deadline:  # let queued finished-signals land
            qtbot.wait(20)

    return wait


@pytest.fixture
def tracker(make_napari_viewer):
    """A viewer with the tracker docked through the plugin manifest."""
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam2v", "SAM 2 video tracker")
    yield viewer, widget
    if widget.session is not None:
        widget.session.close()
