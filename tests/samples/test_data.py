"""Sample loading: the data folder, the Sample type, layer data and error handling."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_sam2v.errors import InputError, InputFileNotFoundError, VideoReadError
from napari_sam2v.samples import (
    Sample,
    _data,
    cells_layer_data,
    load_cells,
    load_reef,
    reef_layer_data,
    sample_data_dir,
)


@pytest.fixture
def empty_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Point the loaders at an empty sample folder, restoring the caches afterwards."""
    load_reef.cache_clear()
    load_cells.cache_clear()
    monkeypatch.setattr(_data, "sample_data_dir", lambda: tmp_path)
    yield tmp_path
    load_reef.cache_clear()
    load_cells.cache_clear()


def test_sample_data_dir_is_the_repository_folder_and_small() -> None:
    folder = sample_data_dir()
    assert (folder / "reef" / "reef.mp4").is_file()
    assert (folder / "cells" / "t98g_phase_crop.tif").is_file()
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert total < 15e6


def test_sample_data_dir_prefers_the_packaged_copy(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "site-packages" / "napari_sam2v"
    (package / "samples").mkdir(parents=True)
    (package / "sample_data").mkdir()
    monkeypatch.setattr(_data, "__file__", str(package / "samples" / "_data.py"))
    assert sample_data_dir() == (package / "sample_data").resolve()


def test_sample_data_dir_missing_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(_data, "__file__", str(tmp_path / "a" / "b" / "samples" / "_data.py"))
    with pytest.raises(InputFileNotFoundError, match="sample data folder not found"):
        sample_data_dir()


def test_reef_sample() -> None:
    sample = load_reef()
    assert isinstance(sample, Sample)
    assert sample.name == "reef" and sample.reference_is_truth is True
    assert sample.frames.shape == (48, 288, 384, 3) and sample.frames.dtype == np.uint8
    assert sample.labels.shape == (48, 288, 384)
    assert sample.video_path.name == "reef.mp4" and sample.prompts_path.is_file()
    assert not sample.calibration.is_spatially_calibrated
    assert sample.calibration.frame_interval == pytest.approx(1 / 12)
    assert sample.calibration.time_unit == "s"
    assert [o.name for o in sample.objects] == ["fish 1", "fish 2", "fish 3"]
    assert sample.attribution
    with pytest.raises(ValueError, match="read-only"):
        sample.labels[0, 0, 0] = 1
    assert load_reef() is sample  # cached


def test_reef_layer_data() -> None:
    (image, image_kw, image_type), (labels, labels_kw, labels_type) = reef_layer_data()
    assert (image_type, labels_type) == ("image", "labels")
    assert image_kw["name"] == "reef" and image_kw["rgb"] is True
    assert labels_kw["name"] == "reef ground truth"
    assert image.shape == (48, 288, 384, 3) and labels.shape == (48, 288, 384)
    assert image_kw["scale"] == (1.0, 1.0, 1.0)
    assert Path(image_kw["metadata"]["video_path"]).is_file()
    assert Path(labels_kw["metadata"]["prompts_path"]).is_file()
    labels[0, 0, 0] = 7  # a copy napari may paint into: the sample stays intact
    assert load_reef().labels[0, 0, 0] == 0


def test_cells_layer_data() -> None:
    (image, image_kw, _), (labels, labels_kw, _) = cells_layer_data()
    assert image_kw["name"] == "T98G phase" and "rgb" not in image_kw
    assert "not ground truth" in labels_kw["name"]
    assert image_kw["scale"] == pytest.approx((1.0, 0.87, 0.87))
    assert labels_kw["scale"] == image_kw["scale"]
    assert image_kw["metadata"]["calibration"]["frame_interval"] == pytest.approx(10.2)
    assert labels_kw["metadata"]["reference_is_truth"] is False
    assert image.dtype == np.uint16 and labels.shape == image.shape
    assert load_cells().frames.shape == image.shape


def test_missing_sample_files_are_reported(empty_data_dir: Path) -> None:
    with pytest.raises(InputFileNotFoundError, match=r"reef\.mp4.*missing"):
        load_reef()
    with pytest.raises(InputFileNotFoundError, match=r"t98g_phase_crop\.tif.*missing"):
        load_cells()


def test_corrupt_sample_files_are_reported(empty_data_dir: Path) -> None:
    shipped = Path(__file__).resolve().parents[2] / "sample_data"
    (empty_data_dir / "reef").mkdir()
    (empty_data_dir / "reef" / "reef.mp4").write_bytes(b"\x00not a video" * 100)
    for name in ("reef_labels.npz", "reef_prompts.json"):
        (empty_data_dir / "reef" / name).write_bytes((shipped / "reef" / name).read_bytes())
    with pytest.raises(VideoReadError, match="reef.mp4"):
        load_reef()
    (empty_data_dir / "reef" / "reef.mp4").write_bytes((shipped / "reef" / "reef.mp4").read_bytes())
    np.savez_compressed(empty_data_dir / "reef" / "reef_labels.npz", labels=np.zeros((2, 4, 4)))
    with pytest.raises(InputError, match="does not match the video"):
        load_reef()
    (empty_data_dir / "reef" / "reef_labels.npz").write_bytes(b"garbage")
    with pytest.raises(InputError, match="reef_labels.npz"):
        load_reef()


def test_decode_rgb_video_rejects_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"")
    with pytest.raises(VideoReadError, match="bad.mp4"):
        _data.decode_rgb_video(bad)


def test_samples_import_no_qt_or_napari() -> None:
    code = (
        "import sys, napari_sam2v.samples as s; s.reef_layer_data(); s.cells_layer_data();"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('napari', 'PyQt5', 'qtpy')];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
