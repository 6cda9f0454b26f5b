"""Propagation controls of the tracker dock: run, progress, live labels, cancel, resume.

A mixin of :class:`~napari_sam2v._qt.tracker_widget.TrackerWidget`: it uses the dock's
``form``, ``jobs``, ``session``, ``labels_layer`` and ``current_frame()``, and runs the
session's propagation generator in a napari thread worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from napari_sam2v._qt._widget_mixin import WidgetMixin
from napari_sam2v.session import PropagationProgress

__all__ = ["PropagationControls"]


class PropagationControls(WidgetMixin):
    """Propagate, show progress, cancel and resume (mixed into the tracker dock)."""

    form: Any
    jobs: Any
    session: Any
    labels_layer: Any
    _cancel: threading.Event
    _last_refresh: float
    #: The session's propagation generator while a run is in progress.
    running_propagation: Any = None
    # methods of the dock this mixin calls
    current_frame: Callable[[], int]
    _show_session: Callable[[], None]

    def propagate(self, *, resume: bool = False) -> Any:
        """Propagate in a worker with progress, live labels and a working Cancel."""
        if self.session is None:
            return None
        f = self.form
        options: dict[str, Any] = {"direction": f.direction_combo.currentData()}
        if f.from_current_check.isChecked():
            options["start"] = self.current_frame()
        if f.range_check.isChecked():
            options["frame_range"] = (f.range_lo.value(), f.range_hi.value())
        self._cancel = threading.Event()
        lo, hi = options.get("frame_range", (0, self.session.n_frames - 1))
        f.progress.setMaximum(max(1, hi - lo + 1))  # until the run says its exact total
        f.progress.setValue(0)
        f.status.setText("Resuming…" if resume else "Propagating…")
        return self.jobs.start(
            "propagation",
            self._propagation_job,
            options,
            resume,
            exclusive=True,
            generator=True,
            on_yield=self._progress,
            on_done=self._propagated,
        )

    def _propagation_job(self, options: dict[str, Any], resume: bool) -> Any:
        kwargs = {"resume": True} if resume else options
        count = 0
        session = self.session  # the dock may let go of it meanwhile (the viewer closing)
        # While it is set, the run holds the session: closing the viewer waits for it.
        self.running_propagation = session.iter_propagate(cancel=self._cancel, **kwargs)
        try:
            for info in self.running_propagation:
                count += 1
                yield info
            session.save()
        finally:
            self.running_propagation = None
        return count

    def _progress(self, info: PropagationProgress) -> None:
        f = self.form
        f.progress.setMaximum(info.total)
        f.progress.setValue(info.done)
        eta = "" if info.eta_s != info.eta_s else f" · ETA {info.eta_s:.0f} s"
        f.status.setText(f"frame {info.frame} · {info.fps:.1f} frames/s{eta}")
        now = time.perf_counter()
        if now - self._last_refresh > 0.25:
            self._last_refresh = now
            self.labels_layer.refresh()

    def _propagated(self, count: int) -> None:
        self.labels_layer.refresh()
        frames = f"{count} frame{'s' if count != 1 else ''}"
        if self._cancel.is_set() and self.session.can_resume:
            message = f"Cancelled after {frames}; finished frames are saved. Resume continues."
        else:  # not cancelled, or cancelled only once the last frame was written
            message = f"Propagated {frames}."
        self.form.status.setText(message)
        self._show_session()

    def cancel(self) -> None:
        """Stop the running propagation before its next frame (finished frames stay)."""
        self._cancel.set()
        self.form.status.setText("Cancelling…")
