"""Exports (csv, parquet, xlsx, sidecar), formula-injection hygiene, plots, napari tracks."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import openpyxl
import pandas as pd
import pytest

from napari_sam2v import __version__
from napari_sam2v.analysis import measure
from napari_sam2v.analysis.export import neutralise_formula
from napari_sam2v.errors import ExportError
from napari_sam2v.types import Calibration, ObjectInfo

from .conftest import FakeResult, moving_labels

HOSTILE = {
    1: '=HYPERLINK("http://evil.example","click")',
    2: "+cmd|' /C calc'!A0",
}


@pytest.fixture
def hostile_measurements():
    labels = moving_labels(absent={1: {3, 4}})
    labels[:, 55:60, 2:6] = 3
    labels[:, 0:3, 70:75] = 4
    names = {**HOSTILE, 3: "-2+3", 4: "@SUM(A1:A9)"}
    result = FakeResult(
        labels=labels,
        calibration=Calibration(pixel_size=0.5, unit="um", frame_interval=2.0, time_unit="s"),
        objects=[ObjectInfo(i, n) for i, n in names.items()],
    )
    return measure(result), names


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@A1", "\t=1", "\r=1"])
def test_neutralise_formula(value) -> None:
    assert neutralise_formula(value) == "'" + value
    assert neutralise_formula("coral 1") == "coral 1"
    assert neutralise_formula(-3.5) == -3.5


def test_csv_export_roundtrip_units_and_no_formulas(tmp_path, hostile_measurements) -> None:
    m, names = hostile_measurements
    files = m.save(tmp_path / "out")
    assert [f.name for f in files] == [
        "frames.csv",
        "tracks.csv",
        "msd.csv",
        "emsd.csv",
        "presence.csv",
        "measurements.json",
    ]
    assert all(f.parent == tmp_path / "out" for f in files)
    frames = pd.read_csv(tmp_path / "out" / "frames.csv")
    np.testing.assert_allclose(frames["area"], m.frames["area"])
    np.testing.assert_array_equal(frames["object_id"], m.frames["object_id"])
    for path in (tmp_path / "out").glob("*.csv"):
        with open(path, newline="") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    assert not cell.startswith(("=", "+", "@")), (path.name, cell)
                    if cell.startswith("-"):  # only numbers may start with a minus
                        float(cell)
    tracks = pd.read_csv(tmp_path / "out" / "tracks.csv")
    assert set(tracks["name"]) == {"'" + n for n in names.values()}
    side = json.loads((tmp_path / "out" / "measurements.json").read_text())
    assert side["package_version"] == __version__
    assert side["calibration"] == {
        "pixel_size": 0.5,
        "unit": "um",
        "frame_interval": 2.0,
        "time_unit": "s",
    }
    assert side["units"]["frames"]["area"] == "um^2"
    assert side["units"]["tracks"]["mean_speed"] == "um/s"
    assert side["units"]["msd"]["msd"] == "um^2"
    assert side["rows"]["frames"] == len(m.frames)
    assert side["files"][0] == "frames.csv"
    # Every column of every table has a unit.
    for name, table in m.tables().items():
        assert set(side["units"][name]) == set(table.columns)
    assert not list((tmp_path / "out").glob(".*partial"))


def test_xlsx_export_has_no_formula_cells(tmp_path, hostile_measurements) -> None:
    m, names = hostile_measurements
    files = m.save(tmp_path, format="xlsx")
    assert [f.name for f in files] == ["measurements.xlsx", "measurements.json"]
    book = openpyxl.load_workbook(files[0])
    assert book.sheetnames == ["frames", "tracks", "msd", "emsd", "presence"]
    seen = set()
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(("=", "+", "-", "@"))
                    seen.add(cell.value)
    assert {"'" + n for n in names.values()} <= seen
    back = pd.read_excel(files[0], sheet_name="frames")
    np.testing.assert_allclose(back["centroid_x"], m.frames["centroid_x"])


def test_names_cannot_choose_file_paths(tmp_path) -> None:
    labels = moving_labels()
    evil = ["../../escaped", "/etc/passwd"]
    result = FakeResult(labels=labels, objects=[ObjectInfo(i + 1, n) for i, n in enumerate(evil)])
    out = tmp_path / "a" / "b"
    m = measure(result)
    csv_files = m.save(out, format="csv")
    files = [*csv_files, *m.save(out, format="xlsx"), *m.save_plots(out, formats=("png",), dpi=40)]
    assert all(f.parent == out for f in files)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        {f.name for f in files}
    )
    assert set(pd.read_csv(csv_files[1])["name"]) == set(evil)


def test_parquet_keeps_raw_values(tmp_path, hostile_measurements) -> None:
    m, names = hostile_measurements
    files = m.save(tmp_path, format="parquet")
    tracks = pd.read_parquet(files[1])
    assert list(tracks["name"]) == [names[i] for i in tracks["object_id"]]
    pd.testing.assert_frame_equal(
        pd.read_parquet(files[0]), m.frames, check_dtype=False, check_like=True
    )


def test_export_errors_keep_existing_files(tmp_path, hostile_measurements) -> None:
    m, _ = hostile_measurements
    with pytest.raises(ExportError, match="unknown export format 'json'"):
        m.save(tmp_path, format="json")
    first = m.save(tmp_path)
    before = {f: f.read_bytes() for f in first}
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="cannot create the output directory"):
        m.save(blocker / "sub")
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(ExportError, match="not writable"):
                m.save(ro)
        finally:
            ro.chmod(0o700)
    assert {f: f.read_bytes() for f in first} == before
    with pytest.raises(ExportError, match="unknown plot format"):
        m.save_plots(tmp_path, formats=("bmp",))
    with pytest.raises(ExportError, match="unknown plot 'pie'"):
        m.plot("pie")


def test_plots_are_written_without_pyplot_state(tmp_path) -> None:
    import matplotlib.pyplot as plt

    labels = moving_labels(absent={1: {3}})
    image = np.random.default_rng(0).random(labels.shape)
    m = measure(labels, image, pixel_size=0.5, unit="mm", frame_interval=1.0, time_unit="s")
    before = plt.get_fignums()
    files = m.save_plots(tmp_path, dpi=40)
    assert [f.name for f in files] == [
        f"{k}.{e}" for k in ("area", "trajectories", "speed", "msd") for e in ("png", "svg")
    ]
    for f in files:
        assert f.stat().st_size > 1000
    assert plt.get_fignums() == before
    fig = m.plot_msd()
    labels_text = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(t.startswith("fit α = 2.0") for t in labels_text)
    assert fig.axes[0].get_xlabel() == "lag time (s)"
    assert m.plot_area().axes[0].get_ylabel() == "area (mm²)"
    # Empty measurements still plot (with a note) rather than failing.
    empty = measure(np.zeros((2, 8, 8), np.uint8))
    assert len(empty.save_plots(tmp_path / "empty", formats=("png",), dpi=40)) == 4


def test_tracks_layer_data(labels_with_gap) -> None:
    m = measure(labels_with_gap, frame_interval=2.0, time_unit="s")
    data, kwargs, kind = m.tracks_layer_data()
    assert kind == "tracks" and data.shape == (len(m.frames), 4)
    ordered = m.frames.sort_values(["object_id", "frame"])
    np.testing.assert_array_equal(data[:, 0], ordered["object_id"])
    np.testing.assert_array_equal(data[:, 1], ordered["frame"])
    np.testing.assert_allclose(data[:, 2:], ordered[["centroid_y_px", "centroid_x_px"]])
    feats = kwargs["features"]
    assert len(feats) == len(data) and {"speed", "area"} <= set(feats.columns)
    assert feats["speed"].notna().all()
    first_rows = np.r_[0, np.flatnonzero(np.diff(data[:, 0])) + 1]
    np.testing.assert_allclose(feats["speed"].iloc[first_rows], feats["speed"].iloc[first_rows + 1])
    gap_row = np.flatnonzero((data[:, 0] == 1) & (data[:, 1] == 5))[0]
    assert feats["speed"].iloc[gap_row] == pytest.approx(6.0 / 6.0)
    from napari.layers import Tracks

    layer = Tracks(data, **kwargs, color_by="speed")
    assert len(layer.features) == len(data)
    assert np.isfinite(layer.track_colors).all() and layer.track_colors[:, 3].min() > 0
