"""The "SAM 2 video tracker" dock: a thin view over :class:`~napari_sam2v.session.TrackingSession`.

The widget maps napari events to session calls and runs every slow call in a napari
thread worker (model load, prefetch, preview, propagation); controls that would
conflict with a running job are disabled until it finishes, is cancelled or fails.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from napari.layers import Image
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QFileDialog, QListWidgetItem, QScrollArea, QVBoxLayout, QWidget

from napari_sam2v._napari_io import STORE_KEY, label_colors
from napari_sam2v._qt._channels import add_frames_layer, layer_to_track
from napari_sam2v._qt._docking import tab_beside_plugin_docks
from napari_sam2v._qt._frames import layer_frame, show_frame
from napari_sam2v._qt._jobs import FIRST_USE_IMPORTS, JobRunner, warm_imports
from napari_sam2v._qt._layer_video import default_store, video_from_layer
from napari_sam2v._qt._lifecycle import DockLifecycle
from napari_sam2v._qt._models import (
    DownloadProgress,
    download_size,
    enable_engine_controls,
    engine_choice,
    explain_model,
    fill_models,
    show_engine_choice,
)
from napari_sam2v._qt._prompt_actions import PromptActions
from napari_sam2v._qt._prompt_layers import PromptLayers
from napari_sam2v._qt._propagation import PropagationControls
from napari_sam2v._qt._store_layers import create_session_store, drop_reader_layers, store_of
from napari_sam2v._qt._tracker_form import HELP, TrackerForm
from napari_sam2v.errors import Sam2vError
from napari_sam2v.session import TrackingSession

__all__ = ["COPY_IN_WORKER", "LABELS_NAME", "TrackerWidget"]

#: Name of the Labels layer backed by the result store.
LABELS_NAME = "SAM2 result"
#: Frames to copy into a new store above this many bytes are copied in a worker.
COPY_IN_WORKER = 32 * 2**20


class TrackerWidget(PromptActions, PropagationControls, DockLifecycle, QWidget):
    """Click objects, preview their masks, propagate them into a zarr-backed Labels layer.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer the dock belongs to.
    """

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session: TrackingSession | None = None
        self.image_layer: Image | None = None
        self.labels_layer: Any = None
        self.prompt_layers: PromptLayers | None = None
        self.jobs = JobRunner(self)
        warm_imports(*FIRST_USE_IMPORTS)
        self.click_latencies: list[float] = []
        #: The masks of the last preview (click, box, undo, ...), if any.
        self.last_result: Any = None
        self._label_colors: tuple[Any, dict[int, str]] | None = None
        #: The store path this dock filled in itself (a picked layer's default), if any.
        self._default_store: str | None = None
        self._cancel = threading.Event()
        self._last_refresh = 0.0
        self.form = TrackerForm()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.form)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        footer = QVBoxLayout()  # run buttons, progress, status: never scrolled away
        footer.setContentsMargins(8, 2, 8, 6)
        footer.addWidget(self.form.run_buttons)
        footer.addWidget(self.form.progress)
        footer.addWidget(self.form.status)
        layout.addLayout(footer)
        self.setToolTip(HELP)
        self._prefetch_timer = QTimer(self)
        self._prefetch_timer.setSingleShot(True)
        self._prefetch_timer.setInterval(150)
        self._prefetch_timer.timeout.connect(self._prefetch_now)
        self._download = DownloadProgress(self.form.progress, parent=self)
        self._connect()
        self._refresh_layers()
        fill_models(self.form)
        self._update_controls()
        self._scroll = scroll
        self.watch_destruction()

    # -- wiring --------------------------------------------------------------------
    def _connect(self) -> None:
        f = self.form
        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._layer_removed)
        self.viewer.dims.events.current_step.connect(self._frame_changed)
        f.layer_combo.currentIndexChanged.connect(self._layer_picked)
        f.browse_button.clicked.connect(self._browse_store)
        f.start_button.clicked.connect(lambda: self.start_session())
        f.open_button.clicked.connect(lambda: self.open_store(f.store_edit.text()))
        f.engine_combo.currentIndexChanged.connect(lambda _: fill_models(f))
        f.model_combo.currentIndexChanged.connect(lambda _: explain_model(f))
        f.load_button.clicked.connect(lambda: self.load_model())
        f.objects.add_requested.connect(self.add_object)
        f.objects.rename_requested.connect(
            lambda oid, name: self._objects_call("rename_object", oid, name)
        )
        f.objects.recolor_requested.connect(
            lambda oid, c: self._objects_call("recolor_object", oid, c)
        )
        f.objects.delete_requested.connect(self.delete_object)
        f.objects.current_changed.connect(self._set_current_object)
        f.background_check.toggled.connect(self._background_toggled)
        f.undo_button.clicked.connect(lambda: self.undo())
        f.redo_button.clicked.connect(lambda: self.redo())
        f.clear_button.clicked.connect(lambda: self.clear_frame())
        f.mask_button.clicked.connect(lambda: self.mask_from_labels())
        f.load_prompts_button.clicked.connect(self._browse_prompts)
        f.propagate_button.clicked.connect(lambda: self.propagate())
        f.resume_button.clicked.connect(lambda: self.propagate(resume=True))
        f.cancel_button.clicked.connect(self.cancel)
        f.warnings.itemClicked.connect(self._jump_to_warning)
        f.save_button.clicked.connect(lambda: self.save_session())
        self.jobs.busy_changed.connect(lambda _: self._update_controls())
        self.jobs.failed.connect(self._job_failed)

    def _job_failed(self, message: str) -> None:
        """Show a job's error in the status line too (not "Propagating…" forever)."""
        self.form.status.setText(f"Stopped: {message}")
        if self.labels_layer is not None:  # frames finished before the error are saved
            self.labels_layer.refresh()

    def _update_controls(self) -> None:
        busy, session = self.jobs.busy, self.session
        self.form.set_enabled(
            busy=busy,
            ready=session is not None,
            can_undo=session is not None and session.can_undo,
            can_redo=session is not None and session.can_redo,
            can_resume=session is not None and session.can_resume,
        )
        enable_engine_controls(self.form, busy=busy)
        if self.prompt_layers is not None:
            self.prompt_layers.set_busy(busy)

    # -- layer and session ---------------------------------------------------------
    def _refresh_layers(self, _event: Any = None) -> None:
        combo = self.form.layer_combo
        current = combo.currentText()
        names = [layer.name for layer in self.viewer.layers if isinstance(layer, Image)]
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(names)
        if current in names:
            combo.setCurrentText(current)
        combo.blockSignals(False)
        self._layer_picked()

    def _picked_layer(self) -> Image | None:
        name = self.form.layer_combo.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def _layer_picked(self, _index: int = 0) -> None:
        layer = self._picked_layer()
        f = self.form
        try:
            video = video_from_layer(layer) if layer is not None else None
        except Sam2vError:
            video = None
        channels = video.n_channels if video is not None else 1
        f.channel_label.setVisible(channels > 1)
        f.channel_spin.setVisible(channels > 1)
        if channels > 1:
            f.channel_spin.setRange(0, channels - 1)
        opened_from = store_of(layer) if layer is not None else None
        if opened_from and self.session is None:  # the frames of a store (File > Open)
            f.store_edit.setText(str(opened_from))
        elif layer is not None and video is not None and self._store_is_default():
            # a default follows the picked layer; a path the user gave stays
            self._default_store = str(default_store(layer.name, video))
            f.store_edit.setText(self._default_store)

    def _store_is_default(self) -> bool:
        text = self.form.store_edit.text()
        return not text or text == self._default_store

    def _usable_layer(self) -> Image | None:
        """The picked layer; a ``(t, c, y, x)`` stack is first split into its channels."""
        picked = self._picked_layer()
        layer = layer_to_track(self.viewer, picked, self.form.channel_spin.value())
        if layer is not picked:
            self.form.layer_combo.setCurrentText(layer.name)
        return layer

    def _browse_store(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Result store (.zarr folder)")
        if path:
            self.form.store_edit.setText(path)

    def start_session(self, store: str | Path | None = None, *, overwrite: bool = False) -> bool:
        """Start a session on the picked layer with a new result store.

        Frames without a source file are copied into the store; a copy larger than
        :data:`COPY_IN_WORKER` runs in a worker (the session starts when it is done),
        so the viewer never freezes on it.

        Returns ``False`` (after a notification) when the layer or store is unusable,
        ``True`` when the session started or its store is being created.
        """
        layer = self._usable_layer()
        path = Path(store or self.form.store_edit.text()).expanduser()
        if layer is None:
            show_warning("Pick an image layer first (File > Open, or a sample).")
            return False
        if self._holds(path):
            if not overwrite:
                show_error(f"This session already writes to {path}: type another store path")
                return False
            self._detach()  # replacing its own store: let go of it first
        # Otherwise the current session stays open until the new one exists, so a
        # mistyped path costs nothing.
        try:
            video = video_from_layer(layer)
            engine, options = engine_choice(self.form)
            session = TrackingSession(
                video.frames,
                channel=self.form.channel_spin.value() if video.n_channels > 1 else video.channel,
                engine=engine,
                engine_options=options,
                calibration=video.calibration,
                video_path=video.video_path,
            )
        except Sam2vError as exc:
            show_error(str(exc))
            return False
        copied = session.bytes_copied_into_store
        if copied > COPY_IN_WORKER:
            self.form.status.setText(f"Copying {copied / 2**20:.0f} MiB of frames into {path}…")
            job = self.jobs.start(
                "session start",
                create_session_store,
                session,
                path,
                overwrite,
                exclusive=True,
                on_done=lambda _store: self._started(session, layer, path),
            )
            return job is not None
        try:
            create_session_store(session, path, overwrite)
        except Sam2vError as exc:
            show_error(str(exc))
            return False
        self._started(session, layer, path)
        return True

    def _started(self, session: TrackingSession, layer: Image, path: Path) -> None:
        self._detach()
        self._attach(session, layer)
        show_info(f"Session started; results go to {path}")

    def open_store(self, path: str | Path) -> bool:
        """Reopen a result store: labels, prompts and objects; the picked layer is the video."""
        layer = self._usable_layer()
        if self._holds(Path(path)):
            self._detach()  # reloading its own store: let go of it first
        try:
            frames = video_from_layer(layer).frames if layer is not None else None
            session = TrackingSession.from_store(path, frames=frames)
        except Sam2vError as exc:
            show_error(str(exc))
            return False
        self._detach()  # the current session is closed only once the other one opened
        if layer is None:
            name = Path(str(path)).stem
            layer = add_frames_layer(self.viewer, session.frames, name, channel=session.channel)
        drop_reader_layers(self.viewer, session.store.path)
        self._attach(session, layer)
        show_engine_choice(self.form, session.engine_name, session.engine_options)
        show_info(
            f"Reopened {path}: {len(session.objects)} objects, {len(session.prompts)} prompts"
        )
        return True

    def _holds(self, path: Path) -> bool:
        """Whether the current session writes to the store at ``path``."""
        store = self.session.store if self.session is not None else None
        return store is not None and Path(store.path).resolve() == path.expanduser().resolve()

    def _detach(self) -> None:
        """Save and close the current session and remove the layers it owns."""
        self._close_session()  # also forgets the session
        if self.prompt_layers is not None:
            self.prompt_layers.remove()
            self.prompt_layers = None
        if self.labels_layer is not None and self.labels_layer in self.viewer.layers:
            self.viewer.layers.remove(self.labels_layer)
        self.labels_layer = None
        self._update_controls()

    def _attach(self, session: TrackingSession, layer: Image) -> None:
        self.session, self.image_layer = session, layer
        ndim = 3
        self.labels_layer = self.viewer.add_labels(
            session.store.labels,
            name=LABELS_NAME,
            scale=layer.scale[:ndim] if layer.ndim == ndim else layer.scale[[0, -2, -1]],
            translate=layer.translate[:ndim]
            if layer.ndim == ndim
            else layer.translate[[0, -2, -1]],
            opacity=0.55,
            metadata={STORE_KEY: str(session.store.path)},
        )
        self._color_labels()
        self.prompt_layers = PromptLayers(
            self.viewer, layer, on_click=self.click, on_box=self.box, on_edit=self.edit_prompts
        )
        # Tagged with the store, the frames and prompts follow a calibration saved later.
        for tagged in (layer, self.prompt_layers.points, self.prompt_layers.shapes):
            tagged.metadata[STORE_KEY] = str(session.store.path)
        for layer_ in (self.prompt_layers.points, self.prompt_layers.shapes):
            layer_.bind_key("Control-Z", lambda _l: self.undo(), overwrite=True)
            layer_.bind_key("Control-Shift-Z", lambda _l: self.redo(), overwrite=True)
        if not session.objects:
            session.add_object()
        n = session.n_frames - 1
        for spin in (self.form.range_lo, self.form.range_hi):
            spin.setRange(0, n)
        self.form.range_hi.setValue(n)
        self.form.status.setText(
            "Ready: click on the image to add a foreground point for the selected object "
            "(Shift-click: background). Load the model first for SAM 2."
        )
        self._show_session()

    def _color_labels(self) -> None:
        """Give the Labels layer the objects' colours (only when they changed: it is slow)."""
        from napari.utils.colormaps import DirectLabelColormap

        if self.session is None:
            return
        colors = {o.id: o.color for o in self.session.objects}
        if (self.labels_layer, colors) == self._label_colors:
            return
        self.labels_layer.colormap = DirectLabelColormap(color_dict=label_colors(colors))
        self._label_colors = (self.labels_layer, colors)

    def _show_session(self) -> None:
        session = self.session
        if session is None or self.prompt_layers is None:
            return
        self.form.objects.set_objects(session.objects, session.current_object)
        self.prompt_layers.show(session)
        self._color_labels()
        self._paint_current_object()
        self.form.warnings.clear()
        names = {o.id: o.name for o in session.objects}
        for warning in session.warnings():
            name = names.get(warning.object_id, f"object {warning.object_id}")
            item = QListWidgetItem(f"frame {warning.frame}: {name}: {warning.message}")
            item.setData(Qt.ItemDataRole.UserRole, (warning.frame, warning.object_id))
            self.form.warnings.addItem(item)
        self._update_controls()

    # -- model and prefetch ----------------------------------------------------------
    def load_model(self) -> Any:
        """Apply the model choice and load it in a worker (then prefetch this frame)."""
        if self.session is None:
            show_warning("Start or reopen a session first.")
            return None
        engine, options = engine_choice(self.form)
        self.session.configure_engine(engine, **options)
        f = self.form
        f.status.setText("Loading the model…")
        model, job = options.get("model"), self.session.load_engine
        if model and not f.model_combo.currentText().endswith("(cached)"):
            f.status.setText(f"Downloading {model} ({download_size(model)}), then loading it…")
            f.progress.setRange(0, 0)  # busy until the hub reports the size
            job = self._download.load_job(self.session, model)
        return self.jobs.start(
            "model load",
            job,
            exclusive=True,
            on_done=self._model_loaded,
            on_finished=self._download.reset_bar,
        )

    def _model_loaded(self, info: Any) -> None:
        extra = " (random weights: not a result)" if info.random_weights else ""
        model = f" {info.model}" if info.model else ""
        self.form.status.setText(f"{info.engine}{model} on {info.device}{extra}")
        self._prefetch_now()

    def current_frame(self) -> int:
        """The frame of the tracked video on screen (in its own time axis)."""
        layer = self.image_layer
        if layer is None or self.session is None or layer not in self.viewer.layers:
            return int(self.viewer.dims.current_step[0])
        return layer_frame(self.viewer, layer, self.session.n_frames)

    def jump_to_frame(self, frame: int) -> None:
        """Show ``frame`` of the tracked video (in its own time axis)."""
        show_frame(self.viewer, self.image_layer, frame)

    def _frame_changed(self, _event: Any = None) -> None:
        self._prefetch_timer.start()

    def _prefetch_now(self) -> None:
        session = self.session
        if session is not None and session.engine_loaded and not self.jobs.busy:
            self.jobs.start("prefetch", session.prefetch, self.current_frame())

    # -- prompts -----------------------------------------------------------------------
    def add_object(self) -> None:
        """Add an object and make it the one that receives clicks."""
        if self.session is not None:
            self.session.add_object()
            self._show_session()

    def _objects_call(self, method: str, *args: Any) -> None:
        try:
            getattr(self.session, method)(*args)
        except Sam2vError as exc:
            show_error(str(exc))
        self._show_session()

    def delete_object(self, object_id: int) -> Any:
        """Delete an object, its prompts and its pixels on disk (in a worker)."""
        if self.session is None:
            return None

        def done(_result: Any) -> None:
            self.labels_layer.refresh()
            self._show_session()

        return self.jobs.start(
            "delete object", self.session.delete_object, object_id, exclusive=True, on_done=done
        )

    def _set_current_object(self, object_id: int) -> None:
        if self.session is not None:
            self.session.current_object = object_id
            self._paint_current_object()

    def _paint_current_object(self) -> None:
        """napari's paint brush paints the object that clicks go to."""
        oid = self.session.current_object if self.session is not None else None
        if self.labels_layer is not None and oid is not None:
            self.labels_layer.selected_label = oid

    def _background_toggled(self, checked: bool) -> None:
        if self.prompt_layers is not None:
            self.prompt_layers.background_mode = checked

    def _jump_to_warning(self, item: QListWidgetItem) -> None:
        frame, oid = item.data(Qt.ItemDataRole.UserRole)
        if self.session is None:
            return
        self.jump_to_frame(frame)
        self._set_current_object(oid)
        self.form.objects.set_objects(self.session.objects, oid)

    def save_session(self) -> None:
        """Write prompts, objects and settings into the result store."""
        if self.session is not None:
            try:
                self.session.save()
            except Sam2vError as exc:
                show_error(str(exc))
                return
            show_info(f"Session saved to {self.session.store.path}")

    def showEvent(self, event: Any) -> None:
        """Fit the dock to its controls once they are styled (no horizontal clipping).

        Opened beside the Results dock, it becomes a tab of it (full height).
        """
        super().showEvent(event)
        scroll_bar = self._scroll.verticalScrollBar()
        bar = scroll_bar.sizeHint().width() if scroll_bar is not None else 0
        self.setMinimumWidth(self.form.minimumSizeHint().width() + bar + 8)
        tab_beside_plugin_docks(self)
