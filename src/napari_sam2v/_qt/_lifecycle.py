"""The tracker dock's end: closed by its button, by Qt or with the viewer.

napari's dock close button takes the widget out of its dock without a ``closeEvent``;
both ways end here, so the session is saved, its store's writer lock released, and
the prompt layers stop driving it. A result layer removed by hand is explained.
"""

from __future__ import annotations

from typing import Any

from napari.utils.notifications import show_error, show_warning
from qtpy.QtCore import QEvent, QTimer

from napari_sam2v.errors import Sam2vError

__all__ = ["DockLifecycle"]


class DockLifecycle:
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

    def closeEvent(self, event: Any) -> None:
        """Stop jobs, then save the session and release the store when the dock closes."""
        self.shut_down()
        super().closeEvent(event)

    def event(self, event: Any) -> bool:
        """napari's dock close button takes the widget out of its dock (no closeEvent)."""
        if event.type() == QEvent.Type.ParentChange:
            if self.parent() is not None:
                self._docked = True
            elif getattr(self, "_docked", False):
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
            self.jobs.busy_changed.connect(lambda busy: busy or self._close_session())
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
