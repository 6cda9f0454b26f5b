"""The per-process engine cache and the report/combined tables, without a cluster."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_sam2v.batch import BatchReport, EngineCache, VideoOutcome, combine_tables
from napari_sam2v.engines import create_engine
from napari_sam2v.errors import VideoReadError
from napari_sam2v.types import Calibration, ObjectInfo


class CountingFactory:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.closed = 0

    def __call__(self, name: str, **options):
        self.calls.append((name, options))
        engine = create_engine("classic")
        original_close = engine.close

        def close() -> None:
            self.closed += 1
            original_close()

        engine.close = close
        return engine


def test_engine_is_built_once_per_key() -> None:
    factory = CountingFactory()
    cache = EngineCache(factory)
    seen = []
    for _ in range(3):
        with cache.acquire("sam2", "random-tiny", "cpu") as (engine, built):
            seen.append((id(engine), built))
    assert [built for _, built in seen] == [True, False, False]
    assert len({ident for ident, _ in seen}) == 1
    assert factory.calls == [("sam2", {"device": "cpu", "model": "random-tiny"})]
    assert cache.loads == 1


def test_different_keys_get_different_engines_and_lru_eviction() -> None:
    factory = CountingFactory()
    cache = EngineCache(factory, max_idle=1)
    with cache.acquire("sam2", "a", "cpu"):
        pass
    with cache.acquire("sam2", "b", "cpu"):
        pass
    assert cache.loads == 2
    assert len(cache) == 1
    assert factory.closed == 1  # "a" was evicted and closed
    with cache.acquire("sam2", "b", "cpu") as (_, built):
        assert not built
    cache.clear()
    assert len(cache) == 0 and factory.closed == 2


def test_classic_ignores_model_and_device() -> None:
    factory = CountingFactory()
    cache = EngineCache(factory)
    with cache.acquire("classic", None, "auto"):
        pass
    assert factory.calls == [("classic", {})]


def test_engine_options_are_passed_and_part_of_the_key() -> None:
    factory = CountingFactory()
    cache = EngineCache(factory, max_idle=3)
    mixed = (("precision", "mixed"),)
    with cache.acquire("sam2", "m", "cpu", mixed):
        pass
    with cache.acquire("sam2", "m", "cpu"):
        pass
    with cache.acquire("classic", None, "auto", (("feature", "phase"),)):
        pass
    assert factory.calls == [
        ("sam2", {"precision": "mixed", "device": "cpu", "model": "m"}),
        ("sam2", {"device": "cpu", "model": "m"}),
        ("classic", {"feature": "phase"}),
    ]
    with cache.acquire("sam2", "m", "cpu", mixed) as (_, built):
        assert not built  # same options: the cached engine


def test_concurrent_tasks_never_share_an_engine() -> None:
    factory = CountingFactory()
    cache = EngineCache(factory)
    inside = threading.Barrier(2, timeout=10)
    used: list[int] = []

    def task() -> None:
        with cache.acquire("classic") as (engine, _):
            used.append(id(engine))
            inside.wait()

    threads = [threading.Thread(target=task) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(set(used)) == 2
    assert cache.loads == 2


def test_engine_survives_an_expected_error() -> None:
    factory = CountingFactory()
    cache = EngineCache(factory)
    with pytest.raises(VideoReadError), cache.acquire("classic"):
        raise VideoReadError("bad.mp4: truncated")
    assert len(cache) == 1 and factory.closed == 0
    with cache.acquire("classic") as (_, built):
        assert not built


def test_engine_of_a_crashed_task_is_dropped() -> None:
    factory = CountingFactory()
    cache = EngineCache(factory)
    with pytest.raises(RuntimeError), cache.acquire("classic"):
        raise RuntimeError("boom")
    assert len(cache) == 0 and factory.closed == 1
    with cache.acquire("classic") as (_, built):
        assert built


def outcome(tmp_path: Path, name: str, status: str, **kwargs) -> VideoOutcome:
    tables = tmp_path / name / "tables"
    return VideoOutcome(
        name=name, video=f"/data/{name}.mp4", row=2, status=status, tables=str(tables), **kwargs
    )


def test_combine_tables_adds_video_column(tmp_path: Path) -> None:
    done = outcome(tmp_path, "v1", "done", seconds={"total": 2.0})
    skipped = outcome(tmp_path, "v2", "skipped")
    failed = outcome(tmp_path, "v3", "failed", error="bad video")
    for item, n in ((done, 2), (skipped, 1), (failed, 5)):
        Path(item.tables).mkdir(parents=True)
        table = pd.DataFrame({"object_id": range(1, n + 1), "mean_speed": [1.5] * n})
        table.to_csv(Path(item.tables) / "tracks.csv", index=False)
    pd.DataFrame({"object_id": [1], "frame": [0]}).to_parquet(Path(done.tables) / "frames.parquet")
    pd.DataFrame({"object_id": [], "frame": []}).to_csv(Path(skipped.tables) / "frames.csv")
    combined = combine_tables([done, skipped, failed], tmp_path)
    assert combined.problems == {}
    written = combined.files
    tracks = pd.read_parquet(written["tracks.parquet"])
    assert list(tracks.columns[:4]) == ["video", "length_unit", "time_unit", "object_id"]
    assert tracks["video"].tolist() == ["v1", "v1", "v2"]
    assert pd.read_csv(written["tracks.csv"]).shape == (3, 5)
    # Without the tables' sidecars the units are unknown, and the tables say so.
    assert combined.units is None and tracks["length_unit"].eq("").all()
    frames = pd.read_csv(written["frames.csv"])
    assert frames["video"].tolist() == ["v1"]
    assert not list(tmp_path.glob("*.tmp"))


def test_report_counts_json_and_text(tmp_path: Path) -> None:
    report = BatchReport(
        out=tmp_path,
        scheduler="tcp://127.0.0.1:1",
        n_workers=2,
        outcomes=[
            outcome(
                tmp_path,
                "v1",
                "done",
                seconds={"total": 3.0},
                model_loaded=True,
                engine_info={"engine": "sam2", "model": "random-tiny", "random_weights": True},
            ),
            outcome(tmp_path, "v2", "skipped"),
            outcome(tmp_path, "v3", "failed", error="v3.mp4: the file is truncated"),
        ],
        wall_seconds=30.0,
    )
    assert not report.ok
    assert report.videos_per_minute == pytest.approx(2.0)
    assert report.model_loads == 1
    data = json.loads(report.save().read_text())
    assert data["counts"] == {"total": 3, "done": 1, "skipped": 1, "failed": 1}
    assert data["videos"][2]["error"] == "v3.mp4: the file is truncated"
    text = report.format()
    assert "FAILED row 2 v3: v3.mp4: the file is truncated" in text
    assert "done 1, skipped (already finished) 1, failed 1" in text
    assert "random weights (a test model) was used; its masks are not a result" in text


def _measured(tmp_path: Path, name: str, calibration: Calibration, names: list[str]):
    """A finished video whose tables were measured with ``calibration``."""
    from napari_sam2v.analysis import measure

    labels = np.zeros((4, 40, 40), np.uint16)
    for t in range(4):
        labels[t, 10:20, 5 + 5 * t : 15 + 5 * t] = 1  # 100 px, 5 px per frame
    item = outcome(tmp_path, name, "done")
    given: dict = {}
    if calibration.pixel_size is not None:
        given.update(pixel_size=calibration.pixel_size, unit=calibration.unit)
    if calibration.frame_interval is not None:
        given.update(frame_interval=calibration.frame_interval, time_unit=calibration.time_unit)
    m = measure(labels, objects=[ObjectInfo(1, names[0])], **given)
    m.save(item.tables, format="csv")
    return item


def test_combined_tables_share_one_set_of_units(tmp_path: Path) -> None:
    videos = [
        _measured(tmp_path, "a", Calibration(0.87, "um", 10.2, "min"), ["=HYPERLINK(x)"]),
        _measured(tmp_path, "b", Calibration(870.0, "nm", 612.0, "s"), ["+cmd"]),
        _measured(tmp_path, "c", Calibration(0.00087, "mm", 10.2, "min"), ["plain"]),
        _measured(tmp_path, "d", Calibration(), ["pixels"]),
    ]
    combined = combine_tables(videos, tmp_path)
    assert combined.units == ("um", "min")
    assert combined.unconverted == ["d"]
    frames = pd.read_parquet(combined.files["frames.parquet"]).set_index("video")
    tracks = pd.read_parquet(combined.files["tracks.parquet"]).set_index("video")
    # The same 100-px object moving 5 px per frame, in um and um/min for a, b and c.
    for video in "abc":
        assert frames.loc[video, "area"].to_numpy() == pytest.approx(100 * 0.87**2)
        assert frames.loc[video, "time"].tolist() == pytest.approx([0, 10.2, 20.4, 30.6])
        assert tracks.loc[video, "mean_speed"] == pytest.approx(5 * 0.87 / 10.2)
        assert tracks.loc[video, "duration"] == pytest.approx(30.6)
        assert frames.loc[video, "area_px"].tolist() == [100] * 4
        assert tuple(tracks.loc[video, ["length_unit", "time_unit"]]) == ("um", "min")
    # The uncalibrated video keeps pixels and frames, and its rows say so.
    assert tracks.loc["d", "mean_speed"] == pytest.approx(5.0)
    assert tuple(tracks.loc["d", ["length_unit", "time_unit"]]) == ("px", "frame")
    # Names: as written in Parquet, guarded against formulas in the CSV.
    assert tracks.loc["a", "name"] == "=HYPERLINK(x)" and tracks.loc["b", "name"] == "+cmd"
    text = Path(combined.files["tracks.csv"]).read_text()
    assert "'=HYPERLINK(x)" in text and "'+cmd" in text and ",=HYPERLINK" not in text


def test_a_partly_calibrated_video_is_converted_on_its_calibrated_axis(tmp_path: Path) -> None:
    """870 nm without an interval, 612 s without a pixel size: no column mixes units."""
    videos = [
        _measured(tmp_path, "a", Calibration(0.87, "um", 10.2, "min"), ["a"]),
        _measured(tmp_path, "b", Calibration(870.0, "nm"), ["b"]),
        _measured(tmp_path, "c", Calibration(frame_interval=612.0, time_unit="s"), ["c"]),
    ]
    combined = combine_tables(videos, tmp_path)
    assert combined.units == ("um", "min")
    assert combined.unconverted == ["b", "c"]
    frames = pd.read_parquet(combined.files["frames.parquet"]).set_index("video")
    tracks = pd.read_parquet(combined.files["tracks.parquet"]).set_index("video")
    # b: lengths in um like a, times still in frames
    assert frames.loc["b", "area"].to_numpy() == pytest.approx(100 * 0.87**2)
    assert tracks.loc["b", "mean_speed"] == pytest.approx(5 * 0.87)
    assert tuple(tracks.loc["b", ["length_unit", "time_unit"]]) == ("um", "frame")
    # c: pixels, times in min like a
    assert tracks.loc["c", "duration"] == pytest.approx(30.6)
    assert tracks.loc["c", "mean_speed"] == pytest.approx(5 / 10.2)
    assert tuple(tracks.loc["c", ["length_unit", "time_unit"]]) == ("px", "min")
