"""The "Tracking results" dock: measurement tables, plots, tracks and exports.

A thin view over :func:`napari_sam2v.measure` and :mod:`napari_sam2v.store.exports`:
pick a result (a Labels layer backed by a result store), check the calibration,
press *Measure*; every slow step runs in a napari thread worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from napari.layers import Image, Labels, Tracks
from napari.utils.notifications import show_info
from qtpy.QtCore import QModelIndex, Qt, QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from napari_sam2v._napari_io import STORE_KEY
from napari_sam2v._qt._calibration_form import CalibrationForm
from napari_sam2v._qt._docking import tab_beside_plugin_docks
from napari_sam2v._qt._frames import show_frame
from napari_sam2v._qt._jobs import JobRunner
from napari_sam2v._qt._plot_canvas import PlotCanvas
from napari_sam2v._qt._results_jobs import export_results, measure_store, record_calibration
from napari_sam2v._qt._store_layers import (
    refill_tracks,
    rescale_store_layers,
    store_layers,
    store_of,
)
from napari_sam2v._qt._table_model import DataFrameModel, sortable
from napari_sam2v.errors import Sam2vError

__all__ = ["ResultsWidget"]

_TABLES = ("frames", "tracks", "msd")
_PLOTS = ("area", "speed", "trajectories", "msd")
_EXPORTS = (
    ("CSV tables", "csv"),
    ("Parquet tables", "parquet"),
    ("Excel workbook", "xlsx"),
    ("Plots (PNG + SVG)", "plots"),
    ("Label TIFF", "tiff"),
    ("PNG masks", "png"),
    ("COCO JSON", "coco"),
)


class ResultsWidget(QWidget):
    """Measure a tracking result and explore, plot and export it.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer the dock belongs to.
    """

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.measurements: Any = None
        self._picked_store: str | None = None
        self._suggested_out = ""
        self._after_measure = ""
        self.jobs = JobRunner(self)
        self.result_combo = QComboBox()
        self.result_combo.setToolTip("Labels layer of a result store (the tracker's 'SAM2 result')")
        self.image_combo = QComboBox()
        self.image_combo.setToolTip(
            "Image layer whose intensities are measured inside each object\n"
            "(mean and integrated intensity, per channel); 'none' to skip"
        )
        self.calibration = CalibrationForm()
        self.measure_button = QPushButton("Measure")
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m frames measured")
        self.progress.hide()  # shown from the first Measure on
        self.status = QLabel("Pick a result and press Measure.")
        self.status.setWordWrap(True)
        self.table_combo = QComboBox()
        self.table_combo.addItems(_TABLES)
        self.model = DataFrameModel()
        self.proxy = sortable(self.model)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        header = self.table.horizontalHeader()
        if header is not None:
            header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setToolTip("Click a row of the frames table to go to that frame and object")
        self.table.setMinimumHeight(160)
        self.plot_combo = QComboBox()
        self.plot_combo.addItems(_PLOTS)
        self.plot = PlotCanvas()
        self.tracks_button = QPushButton("Show tracks layer")
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("export folder")
        browse = QPushButton("…")
        browse.setMaximumWidth(30)
        self.export_buttons: dict[str, QPushButton] = {}
        self._build(browse)
        self._refresh_results()
        self._update_controls()

    def _build(self, browse: QPushButton) -> None:
        source = QGroupBox("Result")
        form = QFormLayout(source)
        form.addRow("Labels", self.result_combo)
        form.addRow("Intensities", self.image_combo)
        form.addRow(self.measure_button)
        form.addRow(self.progress)
        form.addRow(self.status)
        tables = QGroupBox("Measurements")
        layout = QVBoxLayout(tables)
        layout.addWidget(self.table_combo)
        layout.addWidget(self.table)
        plots = QGroupBox("Plots")
        layout = QVBoxLayout(plots)
        row = QHBoxLayout()
        row.addWidget(self.plot_combo)
        row.addWidget(self.tracks_button)
        layout.addLayout(row)
        layout.addWidget(self.plot)
        exports = QGroupBox("Export")
        grid = QGridLayout(exports)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit)
        out_row.addWidget(browse)
        grid.addLayout(out_row, 0, 0, 1, 2)
        for i, (label, kind) in enumerate(_EXPORTS):
            button = QPushButton(label)
            button.clicked.connect(lambda _=False, k=kind: self.export(k))
            self.export_buttons[kind] = button
            grid.addWidget(button, 1 + i // 2, i % 2)
        # One scrolled column: the dock fits a laptop screen beside the tracker dock.
        content = QWidget()
        column = QVBoxLayout(content)
        for box in (source, self.calibration, tables, plots, exports):
            column.addWidget(box)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.viewer.layers.events.inserted.connect(self._refresh_results)
        self.viewer.layers.events.removed.connect(self._refresh_results)
        self.result_combo.currentIndexChanged.connect(self._result_picked)
        self.measure_button.clicked.connect(lambda: self.measure())
        self.calibration.save_button.changed.connect(lambda: self.save_calibration())
        self.table_combo.currentTextChanged.connect(lambda _: self._show_table())
        self.plot_combo.currentTextChanged.connect(lambda _: self._show_plot())
        self.table.clicked.connect(self._row_clicked)
        self.tracks_button.clicked.connect(self.show_tracks)
        browse.clicked.connect(self._browse)
        self.jobs.busy_changed.connect(lambda _: self._update_controls())
        self.jobs.failed.connect(lambda message: self.status.setText(f"Stopped: {message}"))

    def showEvent(self, event: Any) -> None:
        """Opened beside the tracker dock, it becomes a tab of it (full height)."""
        super().showEvent(event)
        tab_beside_plugin_docks(self)

    def _update_controls(self) -> None:
        busy, ready = self.jobs.busy, self.measurements is not None
        self.measure_button.setEnabled(not busy and self.store_path() is not None)
        self.calibration.save_button.enabled = not busy and self.store_path() is not None
        self.result_combo.setEnabled(not busy)
        self.image_combo.setEnabled(not busy)
        self.tracks_button.setEnabled(ready and not busy and not self.measurements.frames.empty)
        for kind, button in self.export_buttons.items():
            needs_tables = kind in ("csv", "parquet", "xlsx", "plots")
            button.setEnabled(
                not busy and (ready or not needs_tables) and self.store_path() is not None
            )

    # -- result choice -------------------------------------------------------------
    def _refresh_results(self, _event: Any = None) -> None:
        current = self.result_combo.currentText()
        names = [
            layer.name
            for layer in self.viewer.layers
            if isinstance(layer, Labels) and store_of(layer)
        ]
        self.result_combo.blockSignals(True)
        self.result_combo.clear()
        self.result_combo.addItems(names)
        if current in names:
            self.result_combo.setCurrentText(current)
        self.result_combo.blockSignals(False)
        picked = self.image_combo.currentText()
        images = [layer.name for layer in self.viewer.layers if isinstance(layer, Image)]
        self.image_combo.clear()
        self.image_combo.addItems(["none", *images])
        if picked in images:
            self.image_combo.setCurrentText(picked)
        self._result_picked()

    def _layer(self) -> Labels | None:
        name = self.result_combo.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def store_path(self) -> str | None:
        """Result store of the picked Labels layer."""
        layer = self._layer()
        return store_of(layer) if layer is not None else None

    def _image(self) -> Any:
        """Frames of the intensity layer, ``(t, y, x[, c])``, or ``None``."""
        name = self.image_combo.currentText()
        if name not in self.viewer.layers:
            return None
        from napari_sam2v._qt._layer_video import video_from_layer

        try:
            return video_from_layer(self.viewer.layers[name]).frames
        except Sam2vError:
            return None

    def _result_picked(self, _index: int = 0) -> None:
        path = self.store_path()
        # Only another store resets the form: adding or removing unrelated layers (a
        # Tracks layer, say) must not discard a calibration the user typed.
        picked, self._picked_store = self._picked_store, path
        if path != picked:
            # The tables, plot and export folder were the other store's: exporting
            # them (or its calibration) under this store's name would mix results.
            self._forget_measurements()
            suggested = self._suggested_out
            self._suggested_out = _results_folder(path) if path is not None else ""
            if self.out_edit.text() in ("", suggested):  # not one the user chose
                self.out_edit.setText(self._suggested_out)
            if path is not None:
                self._load_store_settings(path)
        self._update_controls()

    def _load_store_settings(self, path: str) -> None:
        """Show the picked store's calibration, and its grey frames for intensities."""
        from napari_sam2v.store import open_result

        try:
            self.calibration.set_calibration(open_result(path).calibration)
        except Sam2vError as exc:
            self.status.setText(str(exc))
        own = self._frames_of(path)
        if own is not None:  # microscopy: intensities from the tracked frames
            self.image_combo.setCurrentText(own)

    def _frames_of(self, path: str) -> str | None:
        """The grey (microscopy) Image layer of the store at ``path``'s frames, if open.

        RGB video is left out: colour intensities of fish mean little, and reading every
        frame of a long camera video would make Measure slow.
        """
        frames = [layer for layer in store_layers(self.viewer, path) if isinstance(layer, Image)]
        return frames[0].name if frames and not frames[0].rgb else None

    def _forget_measurements(self) -> None:
        if self.measurements is None:
            return
        self.measurements = None
        self.model.set_frame(pd.DataFrame())
        self.plot.clear()
        self.status.setText("Pick a result and press Measure.")

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Export folder")
        if path:
            self.out_edit.setText(path)

    # -- measuring -------------------------------------------------------------------
    def measure(self, *, note: str = "") -> Any:
        """Measure the picked result in a worker with the calibration shown.

        ``note`` goes before the summary in the status line once it is measured.
        """
        path, cal = self.store_path(), self._form_calibration()
        if path is None or cal is None:
            return None
        self.status.setText("Measuring…")
        done = [0, 0]  # frames measured and in all: written by the worker, shown by a timer
        self.progress.setRange(0, 0)  # busy until the first frame is measured
        self.progress.show()
        timer = QTimer(self)
        timer.setInterval(200)
        timer.timeout.connect(lambda: self._show_progress(done))
        timer.start()

        def finished() -> None:
            timer.stop()
            self._show_progress(done)
            if not done[1]:  # failed before its first frame: no busy bar left behind
                self.progress.hide()

        return self.jobs.start(
            "measurement",
            measure_store,
            path,
            cal,
            self._image(),
            done,
            exclusive=True,
            on_done=lambda measurements: self._measured(measurements, note=note),
            on_finished=finished,
        )

    def _show_progress(self, done: list[int]) -> None:
        frames, total = done
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(frames)

    def _form_calibration(self) -> Any:
        """The calibration as edited, or ``None`` after showing why it is invalid."""
        try:
            return self.calibration.calibration()
        except Sam2vError as exc:
            from napari.utils.notifications import show_error

            self.status.setText(f"Not measured: {exc}")  # the toast fades, this stays
            show_error(str(exc))
            return None

    def save_calibration(self) -> Any:
        """Record the calibration shown in the picked result store, in a worker.

        The store's OME-Zarr scale and provenance change (see
        :meth:`napari_sam2v.store.ResultStore.set_calibration`), and the store's
        layers in the viewer take the new scale and units (see
        :func:`rescale_store_layers`).
        """
        path, cal = self.store_path(), self._form_calibration()
        if path is None or cal is None:
            return None
        self.status.setText("Saving the calibration…")
        return self.jobs.start(
            "calibration",
            record_calibration,
            path,
            cal,
            exclusive=True,
            on_done=lambda saved: self._calibration_saved(path, saved),
            on_finished=self._measure_again,
        )

    def _calibration_saved(self, path: str, calibration: Any) -> None:
        rescaled = rescale_store_layers(self.viewer, path, calibration)
        if rescaled:  # the world's extent changed: fit the view to it again
            self.viewer.reset_view()
        message = (
            f"Saved in the store: {calibration.describe()}. Measure and exports use it, "
            f"napari and Fiji open the store with this scale ({len(rescaled)} open "
            "layers rescaled)."
        )
        self.status.setText(message)
        if self.measurements is not None and self.measurements.calibration != calibration:
            # the tables on show (and a Tracks layer's speeds) are in the old units
            self._after_measure = message

    def _measure_again(self) -> None:
        """Measure with the saved calibration, once the saving job has let go."""
        note, self._after_measure = self._after_measure, ""
        if note:
            self.measure(note=note)

    def _measured(self, measurements: Any, *, note: str = "") -> None:
        self.measurements = measurements
        n = len(measurements.frames)
        summary = (
            f"{len(measurements.objects)} objects, {n} object-frames, "
            f"units: {measurements.calibration.unit} / {measurements.calibration.time_unit}"
        )
        spans = measurements.untracked_frames
        if spans:  # still propagating, or stopped: the tables cover the tracked frames
            listed = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans[:4])
            more = ", ..." if len(spans) > 4 else ""
            summary += f". Not tracked yet: frames {listed}{more} (measure again later)"
        self.status.setText(f"{note} Measured again: {summary}" if note else summary)
        self._show_table()
        self._show_plot()
        if self._tracks_name() in self.viewer.layers:  # its speeds follow the tables
            self.show_tracks()
        self._update_controls()

    def _show_table(self) -> None:
        if self.measurements is None:
            return
        name = self.table_combo.currentText()
        table = getattr(self.measurements, name)
        self.model.set_frame(table, self.measurements.units.get(name, {}))
        self.table.resizeColumnsToContents()

    def _show_plot(self) -> None:
        if self.measurements is not None:
            self.plot.set_figure(self.measurements.plot(self.plot_combo.currentText()))

    def _row_clicked(self, index: QModelIndex) -> None:
        table = self.model.frame
        row = table.iloc[self.proxy.mapToSource(index).row()]
        frame_column = next((c for c in ("frame", "first_frame") if c in table.columns), None)
        if frame_column is not None and "object_id" in table.columns:
            self.jump_to(int(row[frame_column]), int(row["object_id"]))

    def jump_to(self, frame: int, object_id: int) -> None:
        """Show ``frame`` and select ``object_id`` in the result's Labels layer."""
        layer = self._layer()
        show_frame(self.viewer, layer, frame)
        if layer is None:
            return
        layer.selected_label = object_id
        layer.show_selected_label = False

    def _tracks_name(self) -> str:
        layer = self._layer()
        return f"{layer.name if layer is not None else 'result'} tracks"

    def show_tracks(self) -> Any:
        """Add (or replace) a Tracks layer of the object centroids.

        Returns ``None`` (and says why) when nothing is measured or no object has a mask.
        """
        if self.measurements is None:
            return None
        if self.measurements.frames.empty:
            self.status.setText("No object has a mask on any frame: there are no tracks to show.")
            return None
        data, kwargs, _ = self.measurements.tracks_layer_data()
        layer = self._layer()
        name = self._tracks_name()
        kwargs = {**kwargs, "name": name}
        if layer is not None:
            kwargs.update(scale=layer.scale, translate=layer.translate, units=layer.units)
            kwargs["metadata"] = {**kwargs.get("metadata", {}), STORE_KEY: store_of(layer)}
        shown = self.viewer.layers[name] if name in self.viewer.layers else None
        if isinstance(shown, Tracks):  # keep the user's tail length, colormap, opacity...
            refill_tracks(shown, data, kwargs)
            return shown
        if shown is not None:
            self.viewer.layers.remove(shown)
        color_by = "speed" if "speed" in kwargs.get("features", {}) else "track_id"
        return self.viewer.add_tracks(data, color_by=color_by, tail_length=30, **kwargs)

    # -- exports -------------------------------------------------------------------------
    def export(self, kind: str) -> Any:
        """Export tables, plots, label TIFF, PNG masks or COCO in a worker."""
        path, typed = self.store_path(), self.out_edit.text().strip()
        if path is None:
            return None
        if not typed:  # not the working directory of whoever started napari
            self.status.setText("Type or browse to an export folder first.")
            return None
        out = Path(typed).expanduser()
        return self.jobs.start(
            "export",
            export_results,
            kind,
            path,
            out,
            self.measurements,
            exclusive=True,
            on_done=self._exported,
        )

    def _exported(self, files: list[Path]) -> None:
        where = files[0].parent if files else self.out_edit.text()
        message = f"Exported {len(files)} file{'' if len(files) == 1 else 's'} to {where}"
        self.status.setText(message)
        show_info(message)


def _results_folder(path: str) -> str:
    """The export folder offered for a store: ``<store>_results`` beside it."""
    return str(Path(path).with_name(Path(path).stem + "_results"))
