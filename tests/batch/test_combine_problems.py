"""Combined tables: a bad per-video table fails that video only, stale files never win."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from napari_sam2v.batch import VideoOutcome, combine_tables
from napari_sam2v.batch.combine import read_video_table


def _finished(tmp_path: Path, name: str) -> VideoOutcome:
    tables = tmp_path / name / "tables"
    tables.mkdir(parents=True)
    for kind in ("tracks", "frames"):
        pd.DataFrame({"object_id": [1], "area": [2.0]}).to_csv(tables / f"{kind}.csv", index=False)
    return VideoOutcome(name=name, video=f"/v/{name}.tif", row=2, status="done", tables=str(tables))


def test_a_broken_or_missing_table_leaves_out_that_video_only(tmp_path: Path) -> None:
    good, broken, missing = (_finished(tmp_path, n) for n in ("good", "broken", "missing"))
    (Path(broken.tables) / "frames.csv").write_bytes(b"\x00\xff" * 10)
    (Path(broken.tables) / "frames.csv").rename(Path(broken.tables) / "frames.parquet")
    (Path(missing.tables) / "tracks.csv").unlink()
    combined = combine_tables([good, broken, missing], tmp_path)
    assert set(combined.problems) == {"broken", "missing"}
    assert "its frames table cannot be read" in combined.problems["broken"]
    assert "its tracks table is missing" in combined.problems["missing"]
    assert "--remeasure" in combined.problems["missing"]
    for kind in ("tracks", "frames"):
        assert pd.read_csv(tmp_path / f"batch_{kind}.csv")["video"].tolist() == ["good"]


def test_nothing_finished_removes_the_earlier_combined_tables(tmp_path: Path) -> None:
    good = _finished(tmp_path, "good")
    assert set(combine_tables([good], tmp_path).files) == {
        "tracks.parquet", "tracks.csv", "frames.parquet", "frames.csv"
    }  # fmt: skip
    good.status = "failed"
    assert combine_tables([good], tmp_path).files == {}
    assert not list(tmp_path.glob("batch_*"))


def test_the_tables_of_the_latest_save_are_read(tmp_path: Path) -> None:
    from napari_sam2v.analysis import measure

    labels = np.ones((3, 4, 4), np.uint16)  # one 16-pixel object
    measure(labels).save(tmp_path, format="parquet")
    measure(labels, pixel_size=2.0, unit="um").save(tmp_path, format="csv")
    # The parquet file is newer on disk, yet the sidecar names the csv files.
    later = (tmp_path / "tracks.csv").stat().st_mtime_ns + 10**9
    os.utime(tmp_path / "tracks.parquet", ns=(later, later))
    assert read_video_table(tmp_path, "tracks")["area_mean"].iloc[0] == 64.0
    # Without a sidecar, the newest file wins.
    (tmp_path / "measurements.json").unlink()
    assert read_video_table(tmp_path, "tracks")["area_mean"].iloc[0] == 16.0


def test_the_calibrated_videos_choose_the_combined_units() -> None:
    """One video with a pixel size among uncalibrated ones: its unit, not pixels, wins.

    Before, pixels won the vote, and the report named the calibrated video as the one
    that 'could not be fully converted (no pixel size ...)'.
    """
    from napari_sam2v.batch.combine import target_units
    from napari_sam2v.types import Calibration

    sized = Calibration(pixel_size=0.87, unit="um")
    timed = Calibration(frame_interval=2.0, time_unit="min")
    assert target_units([Calibration(), sized, Calibration(), timed]) == ("um", "min")
    assert target_units([Calibration(), sized, Calibration()]) == ("um", "frame")
    assert target_units([Calibration(), Calibration()]) == ("px", "frame")
    assert target_units([None]) is None
