"""``napari-sam2v calibrate`` as a real subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from napari_sam2v.store import ResultStore, open_result
from napari_sam2v.store.pipeline import track
from napari_sam2v.types import Calibration
from tests.cli.conftest import cli, write_video


@pytest.fixture
def store(tmp_path: Path) -> Path:
    video, prompts = write_video(tmp_path, "disks", n_frames=6)
    out = tmp_path / "disks.zarr"
    track(video, prompts, out, engine="classic")
    return out


def test_calibrate_after_the_run_reaches_measure_export_and_the_ngff_scale(
    store: Path, tmp_path: Path
) -> None:
    labels = np.asarray(open_result(store).labels)
    shown = cli("calibrate", store)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"{store}: lengths in pixels, times in frames"

    proc = cli("calibrate", store, "--pixel-size", "0.65", "--unit", "μm")  # Greek mu
    assert proc.returncode == 0, proc.stderr
    assert "0.65 um/pixel, times in frames (was: lengths in pixels" in proc.stdout
    proc = cli("calibrate", store, "--frame-interval", "10", "--time-unit", "minutes")
    assert proc.returncode == 0, proc.stderr
    assert open_result(store).calibration == Calibration(
        pixel_size=0.65, unit="um", frame_interval=10.0, time_unit="min"
    )
    shown = cli("calibrate", store).stdout.splitlines()
    assert shown[0] == f"{store}: 0.65 um/pixel, 10 min/frame"
    assert shown[1].endswith("lengths in pixels, times in frames")
    assert shown[2].endswith("0.65 um/pixel, times in frames")
    np.testing.assert_array_equal(np.asarray(open_result(store).labels), labels)

    attrs = json.loads((store / "labels" / "objects" / ".zattrs").read_text())
    multiscale = attrs["multiscales"][0]
    assert multiscale["datasets"][0]["coordinateTransformations"][0]["scale"] == [
        10.0,
        0.65,
        0.65,
    ]
    assert [a.get("unit") for a in multiscale["axes"]] == ["minute", "micrometer", "micrometer"]
    # measure and export need no flags any more
    assert cli("measure", store, "--out", tmp_path / "tables").returncode == 0
    frames = pd.read_csv(tmp_path / "tables" / "frames.csv")
    np.testing.assert_allclose(frames["area"], frames["area_px"] * 0.65**2)
    np.testing.assert_allclose(frames["time"], frames["frame"] * 10.0)
    assert cli("export", store, "--to", "tiff", "--out", tmp_path / "l.tif").returncode == 0
    with tifffile.TiffFile(tmp_path / "l.tif") as tif:
        num, den = tif.pages[0].tags["XResolution"].value
        assert den / num == pytest.approx(0.65)
        assert tif.imagej_metadata["unit"] == "micron"
        assert tif.imagej_metadata["finterval"] == 10.0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--unit", "um"], "without a pixel size"),
        (["--pixel-size", "0.5"], "needs a unit"),
        (["--pixel-size", "-1", "--unit", "um"], "expected a positive number"),
        (["--pixel-size", "0.5", "--unit", "umm"], "'umm' is not a length unit"),  # a typo
        (["--frame-interval", "2", "--time-unit", "m"], "use one of ms, s, min, h, d"),
    ],
)
def test_bad_calibration_is_one_line_and_changes_nothing(
    store: Path, flags: list[str], message: str
) -> None:
    before = (store / ".zattrs").read_bytes()
    proc = cli("calibrate", store, *flags)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert (store / ".zattrs").read_bytes() == before


def test_a_store_being_written_is_refused(store: Path, tmp_path: Path) -> None:
    with ResultStore.open(store):  # a running 'track' holds the writer lock
        proc = cli("calibrate", store, "--pixel-size", "0.5", "--unit", "um")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert open_result(store).calibration == Calibration()
    missing = cli("calibrate", tmp_path / "missing.zarr", "--pixel-size", "0.5", "--unit", "um")
    assert missing.returncode == 2 and "error: " in missing.stderr


def test_many_stores_at_once_and_a_failure_does_not_stop_the_others(
    store: Path, tmp_path: Path
) -> None:
    import shutil

    second, held = tmp_path / "second.zarr", tmp_path / "held.zarr"
    shutil.copytree(store, second)
    shutil.copytree(store, held)
    with ResultStore.open(held):
        proc = cli("calibrate", store, held, second, "--pixel-size", "2.5", "--unit", "mm")
    assert proc.returncode == 1
    assert open_result(store).calibration.pixel_size == 2.5
    assert open_result(second).calibration.pixel_size == 2.5
    assert open_result(held).calibration == Calibration()
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 2 and str(held) in errors[0]
    assert errors[1] == "error: 1 of 3 stores failed"
    shown = cli("calibrate", store, second)
    assert shown.returncode == 0
    assert [line for line in shown.stdout.splitlines() if not line.startswith(" ")] == [
        f"{store}: 2.5 mm/pixel, times in frames",
        f"{second}: 2.5 mm/pixel, times in frames",
    ]


def test_an_interval_without_its_unit_is_seconds_and_says_so(store: Path, tmp_path: Path) -> None:
    """A store in minutes: --frame-interval alone means seconds, with a note naming the fix."""
    cli("calibrate", store, "--frame-interval", "10", "--time-unit", "min")
    proc = cli("calibrate", store, "--frame-interval", "5")
    assert proc.returncode == 0, proc.stderr
    assert "5 s/frame (was: lengths in pixels, 10 min/frame)" in proc.stdout
    assert proc.stderr.strip() == (
        f"note: {store}: --frame-interval 5 is in s (the default unit), but the store "
        "records 10 min/frame; add --time-unit min to give it in min"
    )
    measured = cli("measure", store, "--out", tmp_path / "t", "--frame-interval", "2")
    assert measured.returncode == 0
    assert measured.stderr == ""  # the store is in seconds now: nothing to say
    quiet = cli("calibrate", store, "--frame-interval", "7", "--time-unit", "min")
    assert quiet.returncode == 0 and quiet.stderr == ""
    noted = cli("measure", store, "--out", tmp_path / "t", "--frame-interval", "420")
    assert "add --time-unit min" in noted.stderr
    assert open_result(store).calibration.frame_interval == 7.0  # measure changes nothing
