"""A camera video with a variable frame rate: its frame times are recorded and measured with."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_sam2v.analysis import measure
from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.prompts import Prompt
from napari_sam2v.store import ResultStore, open_result
from napari_sam2v.store.pipeline import track
from napari_sam2v.types import Calibration
from tests.io.conftest import write_mp4

PROMPTS = Prompts([], [Prompt(0, 1, points=[[5, 25]])])
SPAN = r"variable frame rate \(its frames are 0\.1-0\.3 s apart\)"
TIMES = [0.0, 0.1, 0.4, 0.5, 0.8, 0.9, 1.2, 1.3]  # steps of 0.1 s and 0.3 s


@pytest.fixture(autouse=True)
def _index_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def vfr_store(tmp_path):
    video = tmp_path / "vfr.mkv"
    write_mp4(video, n_frames=8, pts_step=[100, 300])
    with pytest.warns(UserWarning, match=f"{SPAN}; times, speeds and MSD use its own frame times"):
        result = track(video, PROMPTS, tmp_path / "vfr.zarr", engine="classic")
    return result.path


def test_the_videos_own_frame_times_give_times_and_speeds(vfr_store) -> None:
    source = open_result(vfr_store).metadata["source"]
    assert source["variable_frame_rate"] == {"min": 0.1, "median": 0.1, "max": 0.3}
    np.testing.assert_allclose(source["frame_times"], TIMES)
    with pytest.warns(UserWarning, match="times, speeds and MSD use its own frame times"):
        m = measure(open_result(vfr_store))
    frames = m.frames.sort_values("frame")
    assert list(frames["frame"]) == list(range(8))
    # MSD pairs by time apart in 0.1 s steps: four pairs 0.1 s apart, three 0.3 s apart
    msd = m.msd.set_index("lag_frames")
    assert msd.loc[1, "n_pairs"] == 4 and msd.loc[1, "lag_time"] == pytest.approx(0.1)
    assert msd.loc[3, "n_pairs"] == 3 and msd.loc[3, "lag_time"] == pytest.approx(0.3)
    np.testing.assert_allclose(frames["time"], np.asarray(TIMES)[frames["frame"]])
    np.testing.assert_allclose(m.presence["time"], TIMES * (len(m.presence) // 8))
    track_row = m.tracks.iloc[0]
    first, last = int(track_row["first_frame"]), int(track_row["last_frame"])
    assert track_row["duration"] == pytest.approx(TIMES[last] - TIMES[first])
    step = np.hypot(np.diff(frames["centroid_y"]), np.diff(frames["centroid_x"]))
    dt = np.diff(np.asarray(TIMES)[frames["frame"]])
    assert track_row["mean_speed"] == pytest.approx(np.mean(step / dt))
    # one interval given: evenly spaced, and said so
    with pytest.warns(UserWarning, match="use one interval for every frame"):
        even = measure(open_result(vfr_store), frame_interval=0.2, time_unit="s")
    np.testing.assert_allclose(even.frames.sort_values("frame")["time"], 0.2 * frames["frame"])
    assert even.sidecar()["frame_times"] is None


def test_a_recalibrated_interval_replaces_the_frame_times(vfr_store) -> None:
    with ResultStore.open(vfr_store) as store:
        store.set_calibration(Calibration(frame_interval=0.5, time_unit="s"))
    with pytest.warns(UserWarning, match="use one interval for every frame"):
        m = measure(open_result(vfr_store))
    frames = m.frames.sort_values("frame")
    np.testing.assert_allclose(frames["time"], 0.5 * frames["frame"])


@pytest.mark.parametrize("how", ["measure", "calibrate"])
def test_the_videos_median_interval_given_again_keeps_its_frame_times(vfr_store, how) -> None:
    """Given to measure or set with calibrate, the median interval is the video's own."""
    kwargs = {}
    if how == "calibrate":
        with ResultStore.open(vfr_store) as store:
            store.set_calibration(Calibration(frame_interval=0.1, time_unit="s"))
    else:
        kwargs = {"frame_interval": 100.0, "time_unit": "ms"}
    with pytest.warns(UserWarning, match="times, speeds and MSD use its own frame times"):
        m = measure(open_result(vfr_store), **kwargs)
    unit = "ms" if how == "measure" else "s"
    scale = 1000.0 if how == "measure" else 1.0
    frames = m.frames.sort_values("frame")
    np.testing.assert_allclose(frames["time"], scale * np.asarray(TIMES))
    np.testing.assert_allclose(m.sidecar()["frame_times"], scale * np.asarray(TIMES))
    assert m.calibration.time_unit == unit


def test_the_tiff_of_a_variable_rate_video_has_no_single_interval(vfr_store, tmp_path) -> None:
    import tifffile

    from napari_sam2v.store.exports import export_tiff

    with pytest.warns(UserWarning, match="variable frame rate, and an ImageJ TIFF has one"):
        path = export_tiff(vfr_store, tmp_path / "vfr.tif")
    with tifffile.TiffFile(path) as tif:
        assert "finterval" not in tif.imagej_metadata
        assert tif.imagej_metadata["Labels"][:3] == ["frame 0 (0 s)", "frame 1 (0.1 s)",
                                                     "frame 2 (0.4 s)"]  # fmt: skip
    # another interval replaces the video's times, here as in measure
    other = Calibration(frame_interval=2.0, time_unit="s")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        path = export_tiff(vfr_store, tmp_path / "even.tif", calibration=other)
    with tifffile.TiffFile(path) as tif:
        assert tif.imagej_metadata["finterval"] == pytest.approx(2.0)


def test_a_constant_frame_rate_is_not_flagged(tmp_path) -> None:
    video = tmp_path / "cfr.mp4"
    write_mp4(video, n_frames=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        result = track(video, PROMPTS, tmp_path / "cfr.zarr", engine="classic")
        measure(open_result(result.path))
    source = open_result(result.path).metadata["source"]
    assert "variable_frame_rate" not in source and "frame_times" not in source
