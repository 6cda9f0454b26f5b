"""A video's output folder is used only by that video: a shifted manifest never mixes results."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from napari_sam2v.batch import ManifestRow, TaskOptions, VideoTask, process_video
from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.prompts import Prompt
from napari_sam2v.store import open_result
from tests.batch.conftest import write_video
from tests.reliability.media import tree_digest


@pytest.fixture
def finished(tmp_path: Path) -> VideoTask:
    video, prompts = write_video(tmp_path, "t01", n_frames=5)
    row = ManifestRow(row=2, name="t01", video=video, prompts=prompts)
    task = VideoTask(row=row, out_dir=tmp_path / "out" / "t01", options=TaskOptions("classic"))
    outcome = process_video(task)
    assert outcome.status == "done", outcome.error
    return task


def _other_video(tmp_path: Path) -> Path:
    other = tmp_path / "other"
    other.mkdir()
    video, _ = write_video(other, "t01", n_frames=5, shape=(96, 120))
    return video


@pytest.mark.parametrize("remeasure", [False, True])
def test_a_folder_of_another_video_is_refused_untouched(finished, tmp_path, remeasure) -> None:
    before = tree_digest(finished.out_dir)
    row = replace(finished.row, row=3, video=_other_video(tmp_path))
    task = VideoTask(row, finished.out_dir, replace(finished.options, remeasure=remeasure))
    outcome = process_video(task)
    assert outcome.status == "failed"
    assert f"holds the results of {finished.row.video}, not of {row.video}" in outcome.error
    assert "manifest row 3" in outcome.error
    assert tree_digest(finished.out_dir) == before


def test_a_partial_store_of_another_video_is_refused(finished, tmp_path) -> None:
    finished.done_marker.unlink()  # as if the run had stopped before its tables
    before = tree_digest(finished.out_dir)
    task = VideoTask(replace(finished.row, video=_other_video(tmp_path)), finished.out_dir,
                     finished.options)  # fmt: skip
    assert "holds the results of" in process_video(task).error
    assert tree_digest(finished.out_dir) == before


def test_a_video_file_changed_in_place_is_named_as_changed(finished, tmp_path) -> None:
    before = tree_digest(finished.out_dir)
    finished.row.video.write_bytes(_other_video(tmp_path).read_bytes())  # same path
    outcome = process_video(finished)
    assert outcome.status == "failed"
    assert f"holds the results of {finished.row.video} as it was: the file changed" in (
        outcome.error
    )
    assert tree_digest(finished.out_dir) == before


def test_edited_prompts_are_not_reported_as_finished(finished) -> None:
    before = tree_digest(finished.out_dir)
    Prompts([], [Prompt(0, 1, points=[[40, 30]])]).save(finished.row.prompts)
    outcome = process_video(finished)
    assert outcome.status == "failed"
    assert (
        "tracked with other prompts" in outcome.error and "move that folder away" in outcome.error
    )
    assert tree_digest(finished.out_dir) == before


def test_a_moved_video_is_still_its_own(finished, tmp_path) -> None:
    moved = tmp_path / "moved" / "t01.tif"
    moved.parent.mkdir()
    finished.row.video.rename(moved)
    outcome = process_video(VideoTask(replace(finished.row, video=moved), finished.out_dir,
                                      finished.options))  # fmt: skip
    assert outcome.status == "skipped", outcome.error
    assert np.asarray(open_result(finished.store_path).labels).max() == 2


def test_a_finished_store_is_opened_once_to_check_and_measure(finished, monkeypatch) -> None:
    import napari_sam2v.store as store

    opened: list[Path] = []
    real = store.open_result

    def counting(path, *args, **kwargs):
        opened.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(store, "open_result", counting)
    outcome = process_video(VideoTask(finished.row, finished.out_dir,
                                      replace(finished.options, remeasure=True)))  # fmt: skip
    assert outcome.status == "done" and outcome.measured_only, outcome.error
    assert opened == [finished.store_path]
