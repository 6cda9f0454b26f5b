"""The work the Results dock hands to its worker threads (no Qt here).

Each function runs in a napari thread worker, so the dock stays responsive while a
store is measured, calibrated or exported; :class:`~napari_sam2v._qt._jobs.JobRunner`
brings the return value back to the GUI thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["export_results", "measure_store", "record_calibration"]


def measure_store(path: str, calibration: Any, image: Any, done: list[int]) -> Any:
    """Measure the store at ``path``; ``done`` is set to ``[frames, total]`` as it goes."""
    from napari_sam2v.analysis import measure
    from napari_sam2v.store import open_result

    def progress(frames: int, total: int) -> None:
        done[:] = [frames, total]

    return measure(open_result(path), image, progress=progress, **calibration.overrides())


def record_calibration(path: str, calibration: Any) -> Any:
    """Record ``calibration`` in the store, through the tracker's session if it holds it."""
    from napari_sam2v.session import bound_session
    from napari_sam2v.store import ResultStore

    # The tracker dock's session holds its store's writer lock: write through it.
    session = bound_session(path)
    if session is not None:
        session.set_calibration(calibration)
    else:
        with ResultStore.open(path) as store:
            store.set_calibration(calibration)
    return calibration


def export_results(kind: str, path: str, out: Path, measurements: Any) -> list[Path]:
    """Write one kind of export (tables, plots, label TIFF, PNG masks, COCO) into ``out``."""
    from napari_sam2v.store import exports

    if kind in ("csv", "parquet", "xlsx"):
        return list(measurements.save(out, format=kind))
    if kind == "plots":
        return list(measurements.save_plots(out / "plots"))
    # The label files carry the calibration the tables were measured with, if any.
    calibration = measurements.calibration if measurements is not None else None
    if kind == "tiff":
        return [exports.export_tiff(path, out / "labels.tif", calibration=calibration)]
    if kind == "png":
        return list(exports.export_png(path, out / "masks"))
    return [exports.export_coco(path, out / "coco.json", calibration=calibration)]
