"""Prompt actions of the tracker dock: clicks, boxes, edits, undo/redo, masks, prompt files.

A mixin of :class:`~napari_sam2v._qt.tracker_widget.TrackerWidget`. Each action is one
session call run in a napari thread worker; the first one also loads the model, and
every finished one refreshes the labels and prompt layers and autosaves the prompts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari.utils.notifications import show_info, show_warning
from qtpy.QtWidgets import QFileDialog

from napari_sam2v._qt._models import engine_choice
from napari_sam2v._qt._prompt_layers import PromptEdits
from napari_sam2v._qt._widget_mixin import WidgetMixin
from napari_sam2v.session import TrackingSession

__all__ = ["PromptActions"]


class PromptActions(WidgetMixin):
    """Prompt edits as worker jobs (mixed into the tracker dock)."""

    form: Any
    jobs: Any
    session: Any
    image_layer: Any
    labels_layer: Any
    prompt_layers: Any
    click_latencies: list[float]
    last_result: Any
    # methods of the dock this mixin calls
    current_frame: Callable[[], int]
    _show_session: Callable[[], None]
    _model_loaded: Callable[[Any], None]

    def _prompt_job(self, job: str, func: Any, *args: Any, t0: float | None = None) -> Any:
        if self.jobs.busy:
            show_info("A job is running: wait for it or cancel it before adding prompts.")
            self.prompt_layers.show(self.session, force=True)
            return None
        first = not self.session.engine_loaded
        loading = "Loading the model for the first prompt…"
        if first:  # this job loads the model too: block conflicting controls meanwhile
            engine, options = engine_choice(self.form)
            self.session.configure_engine(engine, **options)
            self.form.status.setText(loading)

        def done(result: Any) -> None:
            if isinstance(result, dict):  # imported prompts: one preview per frame
                result = list(result.values())[-1] if result else None
            self.last_result = result[1] if isinstance(result, tuple) else result
            self.labels_layer.refresh()
            self._show_session()
            if t0 is not None:
                self.click_latencies.append(time.perf_counter() - t0)
            if self.last_result is not None:  # say what came out, an empty mask above all
                text = _preview_text(self.last_result, self.session, hint=job == "preview")
                self.form.status.setText(text)
                if job == "preview" and self.last_result.empty_objects:
                    show_warning(text)  # the status line may be scrolled out of view
            self.jobs.start("autosave", _autosave, self.session)  # prompts survive a crash

        def finished() -> None:
            self.prompt_layers.show(self.session)
            if first and self.session.engine_loaded:
                shown = self.form.status.text()  # the preview, or the job's error
                self._model_loaded(self.session.engine.info)
                if shown != loading:
                    self.form.status.setText(f"{self.form.status.text()}. {shown}")

        return self.jobs.start(
            job, func, *args, on_done=done, on_finished=finished, exclusive=first
        )

    def click(self, frame: int, x: float, y: float, positive: bool = True) -> Any:
        """Add a click (from the Points layer) and preview the frame's masks."""
        t0 = time.perf_counter()
        return self._prompt_job(
            "preview", lambda: self.session.add_click(frame, x, y, positive=positive), t0=t0
        )

    def box(self, frame: int, box: tuple[float, float, float, float]) -> Any:
        """Add a box prompt (from the Shapes layer) and preview."""
        return self._prompt_job("preview", lambda: self.session.set_box(frame, box))

    def edit_prompts(self, edits: PromptEdits) -> Any:
        """Apply points and boxes deleted or dragged in the prompt layers (each undoable)."""
        session = self.session

        def job() -> Any:
            result = None
            for (frame, oid), (points, labels) in edits.clicks.items():
                result = session.set_clicks(frame, points, labels, object_id=oid)
            for (frame, oid), box in edits.boxes.items():
                result = (
                    session.remove_box(frame, object_id=oid)
                    if box is None
                    else session.set_box(frame, box, object_id=oid)
                )
            return result

        return self._prompt_job("edit", job)

    def undo(self) -> Any:
        """Undo the last prompt action (Ctrl+Z)."""
        if self.session is not None and self.session.can_undo:
            return self._prompt_job("undo", self.session.undo)
        return None

    def redo(self) -> Any:
        """Redo the last undone prompt action (Ctrl+Shift+Z)."""
        if self.session is not None and self.session.can_redo:
            return self._prompt_job("redo", self.session.redo)
        return None

    def clear_frame(self) -> Any:
        """Remove the current object's prompts on the frame on screen."""
        frame, oid = self.current_frame(), self.session.current_object
        return self._prompt_job("clear", lambda: self.session.clear_frame(frame, object_id=oid))

    def mask_from_labels(self) -> Any:
        """Use the current object's painted pixels on this frame as a mask prompt."""
        frame = self.current_frame()
        return self._prompt_job("mask prompt", lambda: self.session.mask_from_labels(frame))

    def _browse_prompts(self) -> None:
        meta = getattr(self.image_layer, "metadata", {}) or {}
        start = str(meta.get("prompts_path") or "")
        path, _ = QFileDialog.getOpenFileName(self, "Prompt file", start, "Prompts (*.json *.csv)")
        if path:
            self.load_prompts(path)

    def load_prompts(self, path: str | Path) -> Any:
        """Add the objects and prompts of a JSON/CSV prompt file, previewing each frame."""
        from napari_sam2v.io.prompt_files import Prompts

        def job() -> Any:
            return self.session.import_prompts(Prompts.load(path))

        return self._prompt_job("loading prompts", job)


def _preview_text(result: Any, session: TrackingSession, *, hint: bool) -> str:
    """The status line after a preview: mask sizes, and (``hint``) what to try if empty."""
    text = result.describe({o.id: o.name for o in session.objects})
    text = text[0].upper() + text[1:]
    if hint and result.empty_objects:
        text += " (click inside the object, add a box, or Shift-click the background)"
    return text


def _autosave(session: TrackingSession) -> None:
    if session.store is not None:
        session.save()
