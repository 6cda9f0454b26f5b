"""Opening an image folder opens its first frame once (pixels, header and calibration)."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_sam2v.io import open_video


def _count_opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the files opened from now on (Pillow and tifffile both use ``open``)."""
    opened: list[str] = []
    real_open = builtins.open

    def counting_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, (str, Path)):
            opened.append(Path(file).name)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    return opened


def _png_folder(folder: Path) -> np.ndarray:
    frames = np.random.default_rng(0).integers(0, 255, (4, 10, 12, 3)).astype(np.uint8)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"f{i}.png")
    return frames


def _tiff_folder(folder: Path) -> np.ndarray:
    frames = np.random.default_rng(1).integers(0, 4000, (4, 10, 12)).astype(np.uint16)
    for i, frame in enumerate(frames):
        tifffile.imwrite(
            folder / f"f{i}.tif",
            frame,
            imagej=True,
            resolution=(1 / 0.5, 1 / 0.5),
            metadata={"unit": "um", "finterval": 2.0},
        )
    return frames


@pytest.mark.parametrize("write", [_png_folder, _tiff_folder], ids=["png", "imagej_tiff"])
def test_the_first_frame_is_opened_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write: Any
) -> None:
    """It was opened 2 (PNG: pixels, header) or 3 times (TIFF: and calibration)."""
    frames = write(tmp_path)
    opened = _count_opens(monkeypatch)
    video = open_video(tmp_path)
    assert opened.count(f"f0{'.png' if write is _png_folder else '.tif'}") == 1
    assert sorted(opened) == sorted(p.name for p in tmp_path.iterdir())  # others: headers
    monkeypatch.undo()
    assert video.shape == frames.shape
    np.testing.assert_array_equal(video[0], frames[0])
    np.testing.assert_array_equal(video[3], frames[3])
    if write is _tiff_folder:  # the calibration still comes from the first frame
        cal = video.metadata.calibration
        assert cal.pixel_size == pytest.approx(0.5) and cal.unit == "um"
        assert cal.frame_interval == pytest.approx(2.0)
