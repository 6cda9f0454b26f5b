"""One batch task in-process: fresh, skipped, finished-but-unmeasured, failed, crashed."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from napari_sam2v.batch import ManifestRow, TaskOptions, VideoTask, process_video
from napari_sam2v.batch.worker import ENGINE_CACHE
from tests.batch.conftest import write_video


@pytest.fixture
def task(tmp_path: Path) -> VideoTask:
    video, prompts = write_video(tmp_path, "disks", n_frames=6)
    row = ManifestRow(
        row=2,
        name="disks",
        video=video,
        prompts=prompts,
        pixel_size=0.5,
        unit="um",
        frame_interval=3.0,
    )
    return VideoTask(
        row=row,
        out_dir=tmp_path / "out" / "disks",
        options=TaskOptions(engine="classic", table_format="parquet"),
    )


def test_fresh_then_skipped_then_remeasured(task: VideoTask) -> None:
    ENGINE_CACHE.clear()
    first = process_video(task)
    assert first.status == "done", first.error
    assert (first.n_frames, first.n_objects, first.resumed) == (6, 2, False)
    assert first.engine_info["engine"] == "classic"
    assert set(first.seconds) == {"track", "measure", "total"}
    marker = json.loads(task.done_marker.read_text())
    assert marker["status"] == "done" and marker["n_frames"] == 6
    assert (task.tables_dir / "frames.parquet").is_file()

    second = process_video(task)
    assert second.status == "skipped"
    assert (second.n_frames, second.n_objects) == (6, 2)

    # Tracked but never measured (e.g. killed while writing tables): measure only.
    task.done_marker.unlink()
    third = process_video(task)
    assert third.status == "done" and third.resumed
    assert not third.model_loaded and "track" in third.seconds
    assert third.engine_info == first.engine_info


def test_a_bad_video_fails_with_its_message(task: VideoTask) -> None:
    task.row.video.write_bytes(b"not a tiff")
    outcome = process_video(task)
    assert outcome.status == "failed"
    assert str(task.row.video) in outcome.error
    assert not task.done_marker.exists()


def test_an_unexpected_crash_is_reported_not_raised(task: VideoTask, monkeypatch) -> None:
    import napari_sam2v.analysis as analysis

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(analysis, "measure", boom)
    outcome = process_video(task)
    assert outcome.status == "failed"
    assert outcome.error.startswith("unexpected RuntimeError: disk on fire (at ")
    assert not task.done_marker.exists()
    monkeypatch.undo()
    # The store is complete; the next run measures it without tracking again.
    again = process_video(task)
    assert again.status == "done" and again.resumed


def test_engine_options_reach_the_engine(tmp_path: Path) -> None:
    video, prompts = write_video(tmp_path, "disks", n_frames=6)
    row = ManifestRow(row=2, name="disks", video=video, prompts=prompts)
    options = TaskOptions(engine="classic", engine_options=(("feature", "bright"),))
    ENGINE_CACHE.clear()
    outcome = process_video(VideoTask(row=row, out_dir=tmp_path / "out", options=options))
    assert outcome.status == "done", outcome.error
    from napari_sam2v.store import open_result

    settings = open_result(tmp_path / "out" / "result.zarr").metadata["engine"]["settings"]
    assert settings["feature"] == "bright"


def _remeasuring(task: VideoTask, **calibration: object) -> VideoTask:
    """The same video with ``--remeasure`` and the row's calibration replaced."""
    from dataclasses import replace

    return replace(
        task,
        row=replace(task.row, **calibration),
        options=replace(task.options, remeasure=True),
    )


def _no_tracking(monkeypatch) -> None:
    import napari_sam2v.store.pipeline as pipeline

    def refuse(*args, **kwargs):
        raise AssertionError("a finished video was tracked again")

    monkeypatch.setattr(pipeline, "track", refuse)


def test_remeasure_records_the_rows_new_calibration_without_tracking(
    task: VideoTask, monkeypatch
) -> None:
    import pandas as pd

    from napari_sam2v.store import open_result
    from napari_sam2v.store.calibrate import HISTORY_KEY

    ENGINE_CACHE.clear()
    assert process_video(task).status == "done"
    labels = open_result(task.store_path).labels[:]
    _no_tracking(monkeypatch)

    fixed = _remeasuring(task, pixel_size=0.25, frame_interval=6.0)
    outcome = process_video(fixed)
    assert outcome.status == "done", outcome.error
    assert outcome.measured_only and not outcome.model_loaded
    assert (outcome.n_frames, outcome.n_objects) == (6, 2)
    assert outcome.engine_info["engine"] == "classic"
    frames = pd.read_parquet(task.tables_dir / "frames.parquet")
    np.testing.assert_allclose(frames["area"], frames["area_px"] * 0.0625)
    result = open_result(task.store_path)
    assert (result.calibration.pixel_size, result.calibration.frame_interval) == (0.25, 6.0)
    assert [entry["calibration"]["pixel_size"] for entry in result.metadata[HISTORY_KEY]] == [0.5]
    np.testing.assert_array_equal(result.labels[:], labels)  # the labels are not touched
    assert json.loads(task.done_marker.read_text())["measured_only"] is True

    # Without --remeasure the finished video is skipped again, tables as remeasured.
    again = process_video(_remeasuring(task, pixel_size=0.25, frame_interval=6.0))
    assert again.status == "done" and again.measured_only
    skipped = process_video(task)
    assert skipped.status == "skipped"


def test_remeasure_with_a_new_calibration_finishes_an_interrupted_video(
    task: VideoTask,
) -> None:
    """The batch docs' fix-and-remeasure also holds for a video stopped mid-tracking."""
    from napari_sam2v.store import open_result
    from napari_sam2v.store.pipeline import track

    cut = track(task.row.video, task.row.prompts, task.store_path, engine="classic", end=2,
                pixel_size=0.5, unit="um", frame_interval=3.0, time_unit="s")  # fmt: skip
    assert not cut.complete
    fixed = _remeasuring(task, pixel_size=0.25)
    outcome = process_video(fixed)
    assert outcome.status == "done", outcome.error
    assert outcome.resumed and not outcome.measured_only
    result = open_result(task.store_path)
    assert result.complete and result.calibration.pixel_size == 0.25


def test_remeasure_keeps_a_calibration_set_on_the_store(task: VideoTask, monkeypatch) -> None:
    """A row without calibration columns measures in the store's (``calibrate``'s) values."""
    import pandas as pd

    from napari_sam2v.store import ResultStore
    from napari_sam2v.types import Calibration

    bare = _remeasuring(task, pixel_size=None, unit=None, frame_interval=None)
    ENGINE_CACHE.clear()
    assert process_video(replace_options(bare, remeasure=False)).status == "done"
    with ResultStore.open(task.store_path) as store:
        store.set_calibration(Calibration(pixel_size=2.0, unit="mm"))
    _no_tracking(monkeypatch)
    outcome = process_video(bare)
    assert outcome.status == "done", outcome.error
    frames = pd.read_parquet(task.tables_dir / "frames.parquet")
    np.testing.assert_allclose(frames["area"], frames["area_px"] * 4.0)
    recorded = json.loads((task.tables_dir / "measurements.json").read_text())["calibration"]
    assert (recorded["pixel_size"], recorded["unit"]) == (2.0, "mm")


def test_a_failed_remeasure_leaves_the_video_unfinished(task: VideoTask) -> None:
    from napari_sam2v.store import ResultStore

    ENGINE_CACHE.clear()
    assert process_video(task).status == "done"
    fixed = _remeasuring(task, pixel_size=0.25)
    with ResultStore.open(task.store_path):  # another writer holds the store
        outcome = process_video(fixed)
    assert outcome.status == "failed"
    assert "lock" in outcome.error.lower()
    # Not marked finished with stale tables: a plain re-run measures it again.
    assert not task.done_marker.exists()
    retry = process_video(replace_options(fixed, remeasure=False))
    assert retry.status == "done" and retry.measured_only
    assert ResultStore.open(task.store_path).calibration.pixel_size == 0.25


def replace_options(task: VideoTask, **options: object) -> VideoTask:
    from dataclasses import replace

    return replace(task, options=replace(task.options, **options))


def test_remeasure_in_another_format_removes_the_old_tables(task: VideoTask, monkeypatch) -> None:
    ENGINE_CACHE.clear()
    assert process_video(task).status == "done"
    assert (task.tables_dir / "tracks.parquet").is_file()
    _no_tracking(monkeypatch)
    options = replace(task.options, remeasure=True, table_format="csv")
    outcome = process_video(VideoTask(task.row, task.out_dir, options))
    assert outcome.status == "done", outcome.error
    names = sorted(p.name for p in task.tables_dir.iterdir())
    assert "tracks.csv" in names and not [n for n in names if n.endswith(".parquet")]


def test_a_stopped_batch_stops_its_videos_resumably(task: VideoTask, monkeypatch) -> None:
    from napari_sam2v.batch import worker
    from napari_sam2v.batch.interrupt import request_stop, stop_event
    from napari_sam2v.store import open_result

    stopped = replace(task, options=replace(task.options, batch_id="stop-before"))
    request_stop("stop-before")
    outcome = process_video(stopped)
    assert outcome.status == "failed" and outcome.error == worker.NOT_STARTED
    assert not task.out_dir.exists()  # nothing was started

    # asked to stop while it runs: it stops after a frame, leaving a resumable store
    running = replace(task, options=replace(task.options, batch_id="stop-while"))
    owner = worker.check_owner

    def stop_once_checked(checked: VideoTask):
        found = owner(checked)
        stop_event("stop-while").set()
        return found

    monkeypatch.setattr(worker, "check_owner", stop_once_checked)
    outcome = process_video(running)
    assert outcome.status == "failed" and outcome.error == worker.STOPPED
    assert not task.done_marker.exists() and not task.tables_dir.exists()
    store = open_result(task.store_path)
    assert store.status == "cancelled" and not store.complete

    monkeypatch.setattr(worker, "check_owner", owner)
    again = process_video(task)  # the next run (another batch id) resumes it
    assert again.status == "done" and again.resumed, again.error
    assert open_result(task.store_path).complete
