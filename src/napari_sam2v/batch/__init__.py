"""Batch runs: a CSV manifest of videos, one dask.distributed task per video (Qt-free).

>>> from napari_sam2v.batch import run_batch  # doctest: +SKIP
>>> report = run_batch("manifest.csv", "results/", engine="sam2")  # doctest: +SKIP
>>> print(report.format())  # doctest: +SKIP
"""

from __future__ import annotations

from napari_sam2v.batch.combine import CombinedTables, combine_tables, read_video_table
from napari_sam2v.batch.manifest import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    Manifest,
    ManifestRow,
    read_manifest,
    safe_name,
)
from napari_sam2v.batch.report import BatchReport
from napari_sam2v.batch.runner import default_workers, run_batch
from napari_sam2v.batch.tasks import TaskOptions, VideoOutcome, VideoTask
from napari_sam2v.batch.worker import ENGINE_CACHE, EngineCache, is_finished, process_video

__all__ = [
    "ENGINE_CACHE",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "BatchReport",
    "CombinedTables",
    "EngineCache",
    "Manifest",
    "ManifestRow",
    "TaskOptions",
    "VideoOutcome",
    "VideoTask",
    "combine_tables",
    "default_workers",
    "is_finished",
    "process_video",
    "read_manifest",
    "read_video_table",
    "run_batch",
    "safe_name",
]
