"""A camera video with a variable frame rate: recorded in the store, said on track and measure."""

from __future__ import annotations

import warnings

import pytest

from napari_sam2v.analysis import measure
from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.prompts import Prompt
from napari_sam2v.store import open_result
from napari_sam2v.store.pipeline import track
from tests.io.conftest import write_mp4

PROMPTS = Prompts([], [Prompt(0, 1, points=[[5, 25]])])


@pytest.fixture(autouse=True)
def _index_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


NOTE = r"variable frame rate \(its frames are 0\.1-0\.3 s apart\); times, speeds and MSD"


def test_variable_frame_rate_is_recorded_and_said(tmp_path) -> None:
    video = tmp_path / "vfr.mkv"
    write_mp4(video, n_frames=8, pts_step=[100, 300])
    with pytest.warns(UserWarning, match=NOTE):
        result = track(video, PROMPTS, tmp_path / "vfr.zarr", engine="classic")
    recorded = open_result(result.path).metadata["source"]["variable_frame_rate"]
    assert recorded == {"min": 0.1, "median": 0.1, "max": 0.3}
    with pytest.warns(UserWarning, match=f"vfr.zarr: the video has a {NOTE}"):
        measure(open_result(result.path))


def test_a_constant_frame_rate_is_not_flagged(tmp_path) -> None:
    video = tmp_path / "cfr.mp4"
    write_mp4(video, n_frames=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        result = track(video, PROMPTS, tmp_path / "cfr.zarr", engine="classic")
        measure(open_result(result.path))
    assert "variable_frame_rate" not in open_result(result.path).metadata["source"]
