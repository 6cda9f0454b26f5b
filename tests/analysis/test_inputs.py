"""Inputs of ``measure``: store results, arrays of every kind, calibration, bad input."""

from __future__ import annotations

import subprocess
import sys

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import zarr

from napari_sam2v.analysis import Measurements, measure
from napari_sam2v.errors import InputError, MeasurementCancelledError, Sam2vError
from napari_sam2v.types import Calibration, ObjectInfo

from .conftest import FakeResult, moving_labels


class FrameOnly:
    """Array-like that records every index it is read with (streaming check)."""

    def __init__(self, data: np.ndarray) -> None:
        self._data = data
        self.shape = data.shape
        self.dtype = data.dtype
        self.reads: list[object] = []

    def __getitem__(self, index: object) -> np.ndarray:
        self.reads.append(index)
        return self._data[index]


def test_result_calibration_objects_and_scores_are_used() -> None:
    labels = moving_labels()
    scores = pd.DataFrame(
        {
            "object_id": [1, 1, 2],
            "frame": [0, 1, 0],
            "object_score_logit": [0.0, 2.0, -1.0],
            "iou": [0.9, 0.8, 0.7],
        }
    )
    result = FakeResult(
        labels=da.from_array(labels, chunks=(1, *labels.shape[1:])),
        calibration=Calibration(pixel_size=2.0, unit="mm", frame_interval=0.5, time_unit="s"),
        objects=[ObjectInfo(1, "coral A"), ObjectInfo(2, "coral B"), ObjectInfo(3, "lost")],
        scores=scores,
    )
    m = measure(result)
    assert isinstance(m, Measurements)
    assert m.calibration.unit == "mm" and m.calibration.frame_interval == 0.5
    assert m.source == "/data/fake.zarr"
    assert set(m.frames["name"]) == {"coral A", "coral B"}
    first = m.frames.set_index(["object_id", "frame"])
    assert first.loc[(1, 0), "score"] == pytest.approx(0.5)
    assert first.loc[(1, 1), "score"] == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert first.loc[(2, 0), "iou"] == pytest.approx(0.7)
    assert np.isnan(first.loc[(1, 5), "score"])
    # Object 3 is in the store but never present: a track row and an all-False presence.
    assert list(m.tracks["object_id"]) == [1, 2, 3]
    lost = m.tracks.set_index("object_id").loc[3]
    assert lost["n_frames"] == 0 and np.isnan(lost["mean_speed"]) and lost["name"] == "lost"
    assert not m.presence[m.presence["object_id"] == 3]["present"].any()
    # User calibration overrides the store's.
    over = measure(result, pixel_size=0.1, unit="um")
    assert over.calibration.unit == "um" and over.calibration.frame_interval == 0.5
    np.testing.assert_allclose(over.frames["area"], m.frames["area_px"] * 0.01)


def test_numpy_dask_zarr_and_frame_streaming_agree(tmp_path) -> None:
    labels = moving_labels(absent={2: {4}})
    ref = measure(labels)
    z = zarr.open_array(
        tmp_path / "l.zarr", mode="w", shape=labels.shape, chunks=(1, 64, 80), dtype="u2"
    )
    z[:] = labels
    lazy = FrameOnly(labels)
    for source in (da.from_array(labels, chunks=(1, 32, 40)), z, lazy):
        got = measure(source)
        pd.testing.assert_frame_equal(got.frames, ref.frames)
        pd.testing.assert_frame_equal(got.tracks, ref.tracks)
        pd.testing.assert_frame_equal(got.msd, ref.msd)
    assert lazy.reads == list(range(labels.shape[0]))  # one integer read per frame, in order


def test_objects_subset_and_bool_labels() -> None:
    labels = moving_labels()
    m = measure(labels, objects=[2])
    assert set(m.frames["object_id"]) == {2} and list(m.tracks["object_id"]) == [2]
    b = measure(labels > 0)
    assert set(b.frames["object_id"]) == {1}
    # A requested object that never appears is reported as never present.
    ghost = measure(labels, objects=[1, ObjectInfo(7, "ghost")])
    assert list(ghost.tracks["object_id"]) == [1, 7]
    assert ghost.tracks.set_index("object_id").loc[7, "n_frames"] == 0
    assert ghost.tracks.set_index("object_id").loc[7, "name"] == "ghost"
    assert not ghost.presence[ghost.presence["object_id"] == 7]["present"].any()


def test_without_shape_features() -> None:
    labels = moving_labels()
    fast = measure(labels, shape_features=False).frames
    full = measure(labels).frames
    for col in ("perimeter", "solidity", "circularity"):
        assert fast[col].isna().all() and full[col].notna().all()
    pd.testing.assert_frame_equal(
        fast.drop(columns=["perimeter", "solidity", "circularity"]),
        full.drop(columns=["perimeter", "solidity", "circularity"]),
    )


def test_option_errors_come_before_reading() -> None:
    lazy = FrameOnly(moving_labels())
    with pytest.raises(InputError, match="max_lag must be at least 1"):
        measure(lazy, max_lag=0)
    assert lazy.reads == []


def test_progress_and_cancel() -> None:
    labels = moving_labels()
    seen: list[tuple[int, int]] = []
    measure(labels, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (10, 10) and len(seen) == 10
    calls = iter(range(100))
    with pytest.raises(MeasurementCancelledError, match="cancelled at frame 3 of 10"):
        measure(labels, cancel=lambda: next(calls) >= 3)


@pytest.mark.parametrize(
    ("data", "kwargs", "message"),
    [
        (np.zeros((4, 5)), {}, r"3 axes \(t, y, x\)"),
        (np.zeros((2, 4, 5), np.float32), {}, "must be integers"),
        ([[1, 2]], {}, "expected a Result or a"),
        (np.zeros((2, 0, 5), np.uint8), {}, "empty frame shape"),
        (np.full((2, 4, 5), -1, np.int16), {}, "frame 0 has negative label values"),
        (np.zeros((2, 4, 5), np.uint8), {"pixel_size": 0.5}, "needs a unit"),
        (np.zeros((2, 4, 5), np.uint8), {"unit": "um"}, "without a pixel size"),
        (np.zeros((2, 4, 5), np.uint8), {"frame_interval": 2.0}, "needs a time unit"),
        (np.zeros((2, 4, 5), np.uint8), {"time_unit": "s"}, "without a frame interval"),
        (np.zeros((2, 4, 5), np.uint8), {"pixel_size": -1.0, "unit": "um"}, "positive finite"),
        (np.zeros((2, 4, 5), np.uint8), {"objects": []}, "list of objects to measure is empty"),
        (np.zeros((2, 4, 5), np.uint8), {"objects": [0]}, "positive integers"),
        (np.zeros((2, 4, 5), np.uint8), {"growth_threshold": -0.1}, "non-negative"),
        (np.zeros((2, 4, 5), np.uint8), {"max_lag": 0}, "max_lag must be at least 1"),
        (np.zeros((2, 4, 5), np.uint8), {"max_lag": 2.5}, "max_lag must be at least 1"),
        (np.zeros((2, 4, 5), np.uint8), {"image": np.zeros((2, 4, 6))}, "does not match"),
        (np.zeros((2, 4, 5), np.uint8), {"image": np.zeros((4, 5))}, r"\(t, y, x\) or"),
    ],
)
def test_bad_input_gives_one_clear_error(data, kwargs, message) -> None:
    with pytest.raises(InputError, match=message) as info:
        measure(data, **kwargs)
    assert isinstance(info.value, Sam2vError)


def test_bad_scores_table() -> None:
    result = FakeResult(labels=moving_labels(), scores=pd.DataFrame({"object_id": [1]}))
    with pytest.raises(InputError, match="scores table lacks column"):
        measure(result)


def test_analysis_import_is_qt_free() -> None:
    code = (
        "import sys, napari_sam2v.analysis as a; "
        "bad = [m for m in ('napari', 'qtpy', 'PyQt5', 'matplotlib.pyplot') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_frames_a_partial_store_never_tracked_are_not_called_absent() -> None:
    labels = moving_labels()
    labels[6:] = 0  # the run stopped after frame 5
    done = np.zeros(10, dtype=bool)
    done[:6] = True
    cal = Calibration(frame_interval=10.2, time_unit="min")
    m = measure(FakeResult(labels=labels, calibration=cal, frames_done=done))
    assert m.untracked_frames == [[6, 9]]
    assert m.sidecar()["untracked_frames"] == [[6, 9]]
    pres = m.presence.set_index(["object_id", "frame"])
    assert pres.loc[(1, 5), "tracked"] and pres.loc[(1, 5), "present"]
    assert not pres.loc[(1, 7), "tracked"] and not pres.loc[(1, 7), "present"]
    assert m.units["presence"]["tracked"] == "bool"
    # A complete store (or a plain array) has every frame tracked.
    whole = measure(FakeResult(labels=labels, frames_done=np.ones(10, dtype=bool)))
    assert whole.untracked_frames == [] and whole.presence["tracked"].all()
    assert measure(labels).presence["tracked"].all()
    # Times read as written: 3 x 10.2 min is 30.6, not 30.599999999999998.
    assert m.frames.set_index(["object_id", "frame"]).loc[(1, 3), "time"] == 30.6
    assert pres.loc[(1, 3), "time"] == 30.6
    assert m.msd.loc[m.msd["lag_frames"] == 3, "lag_time"].iloc[0] == 30.6
