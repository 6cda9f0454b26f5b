"""One batch task in-process: fresh, skipped, finished-but-unmeasured, failed, crashed."""

from __future__ import annotations

import json
from pathlib import Path

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
