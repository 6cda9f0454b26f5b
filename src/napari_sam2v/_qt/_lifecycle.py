"""The tracker dock's end: closed by its button, by Qt or with the viewer.

napari's dock close button takes the widget out of its dock without a ``closeEvent``;
both ways end here, so the session is saved, its store's writer lock released, and
the prompt layers stop driving it. A result layer removed by hand is explained.
"""

from __future__ import annotations

import time
from typing import Any

from napari.utils.notifications import show_error, show_warning
from qtpy.QtCore import QEvent, QTimer
from qtpy.QtWidgets import QMainWindow

from napari_sam2v._qt._widget_mixin import WidgetMixin
from napari_sam2v.errors import Sam2vError

__all__ = ["CLOSE_WAIT_S", "DockLifecycle"]

#: Longest wait, when the viewer closes, for a running propagation to finish its frame.
CLOSE_WAIT_S = 30.0


class DockLifecycle(WidgetMixin):
    """Mixin of :class:`~napari_sam2v._qt.tracker_widget.TrackerWidget` (before QWidget).

    Relies on the widget's ``session``, ``prompt_layers``, ``jobs``, ``_cancel``,
    ``viewer``, ``image_layer`` and ``labels_layer``.
    """

    session: Any
    prompt_layers: Any
    jobs: Any
    _cancel: Any
    viewer: Any
    image_layer: Any
    labels_layer: Any
    form: Any
    running_propagation: Any
    #: A Close event reached the viewer's window; the Hide that follows it if accepted ends
    #: the session (a close the user cancels brings none).
    _window_closing = False
    #: The widget is in a dock; losing its parent then means the dock's ✕ was pressed.
    _docked = False

    def watch_destruction(self) -> None:
        """Close the session when Qt deletes the dock without closing it (the viewer closed).

        Only Python state is touched then (Qt's side is gone).
        """
        self.destroyed.connect(lambda *_: _orphaned(self))

    def showEvent(self, event: Any) -> None:
        """Once shown, the dock is inside the viewer's window: watch it close."""
        super().showEvent(event)
        window = _main_window(self)
        if window is not None:
            window.installEventFilter(self)  # see eventFilter

    def eventFilter(self, watched: Any, event: Any) -> bool:
        """The viewer's window closes: end a running propagation, save, let go.

        A Close event only asks: napari may then ask the user to confirm, who may say
        no. Qt hides the window once the close is accepted, before deleting it with
        the dock (no ``closeEvent`` reaches the dock): that Hide ends the session.
        """
        kind = event.type()
        if kind == QEvent.Type.Close:
            self._window_closing = True
        elif kind == QEvent.Type.Show:
            self._window_closing = False
        elif kind == QEvent.Type.Hide and not event.spontaneous():  # not minimised
            if self._window_closing and self.session is not None:
                self._window_closing = False
                self._end_with_window()
        return False

    def _end_with_window(self) -> None:
        """Cancel a running propagation, wait for its frame, then save and close.

        The run ends in its own thread, given up to :data:`CLOSE_WAIT_S` (the GUI's
        event loop is not entered meanwhile); napari's quitting of its worker does not
        stop it half-way (see :class:`~napari_sam2v._qt._jobs.JobRunner`).
        """
        self._cancel.set()
        deadline = time.monotonic() + CLOSE_WAIT_S
        while self.running_propagation is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.running_propagation is None:
            self._close_session()
            self.form.status.setText(
                "Session saved and closed with the viewer; Reopen store continues it."
            )

    def closeEvent(self, event: Any) -> None:
        """Stop jobs, then save the session and release the store when the dock closes."""
        self.shut_down()
        super().closeEvent(event)

    def event(self, event: Any) -> bool:
        """napari's dock close button takes the widget out of its dock (no closeEvent)."""
        if event.type() == QEvent.Type.ParentChange:
            if self.parent() is not None:
                self._docked = True
            elif self._docked:
                self._docked = False
                self.shut_down()
        return super().event(event)

    def shut_down(self) -> None:
        """Cancel the running job, then save and close the session (releases the store).

        Also stops the prompt layers from driving a closed session: clicks on them
        after the dock is gone change nothing.
        """
        self._cancel.set()
        self.jobs.quit_all()
        if self.prompt_layers is not None:
            self.prompt_layers.disconnect()
        if self.jobs.active:

            def close_when_idle(busy: bool) -> None:
                if not busy:
                    self._close_session()

            self.jobs.busy_changed.connect(close_when_idle)
        else:
            self._close_session()

    def _close_session(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            try:
                session.close()
            except Sam2vError as exc:
                show_error(str(exc))

    def _layer_removed(self, event: Any) -> None:
        """Say so when the result layer goes while the session still writes the store."""
        # napari hands plugins proxies of its layers: compare the layers themselves
        shown = getattr(self.labels_layer, "__wrapped__", self.labels_layer)
        if self.session is not None and shown is not None and event.value is shown:
            # Closing the viewer removes every layer too: say it only if the dock stays.
            QTimer.singleShot(100, self._warn_result_removed)

    def _warn_result_removed(self) -> None:
        try:
            # a closed viewer has removed the video too (or deleted this dock)
            kept = self.session is not None and self.image_layer in self.viewer.layers
        except RuntimeError:
            return
        if kept:
            show_warning(
                "The SAM2 result layer was removed; the session still writes every mask "
                "to its store. Press Reopen store to show it again."
            )


def _main_window(widget: Any) -> QMainWindow | None:
    """The viewer's main window holding ``widget``, also while its dock floats.

    A floating dock is a window of its own (``widget.window()`` is the dock), but it
    keeps the main window as its parent.
    """
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QMainWindow):
        parent = parent.parentWidget()
    return parent


def _orphaned(dock: Any) -> None:
    """Close the deleted dock's session, unless a propagation still holds it.

    A run still going holds the session's lock, taken in its worker thread: only that
    thread can let go of it. The run stops after its frame (its cancel is set); its
    frames are on disk and Reopen store + Resume finishes it; the lock of the store is
    recovered once this process exits.
    """
    dock._cancel.set()
    session, dock.session = dock.session, None
    if session is not None and getattr(dock, "running_propagation", None) is None:
        try:
            session.close()
        except Exception:  # at interpreter exit zarr may refuse to work
            return  # nobody left to tell; the store stays readable and resumable
