"""open_video(): pixel sizes and frame intervals from TIFF, OME-Zarr, napari layers and
folders of calibrated frames, including non-square pixels."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import zarr

from napari_sam2v.io import open_video

NOT_SQUARE = "pixels are not square.*0.87 x 1.74 um, y x x.*measurements are in pixels"


@pytest.fixture
def stack() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 4000, (4, 20, 24)).astype(np.uint16)


def _imagej(path: Path, data: np.ndarray, size_yx: tuple[float, float], **meta: Any) -> Path:
    """An ImageJ TIFF with pixels of ``size_yx`` micrometres (tifffile takes x, y)."""
    resolution = (1 / size_yx[1], 1 / size_yx[0])
    metadata = {"unit": "um", "axes": "TYX"[-data.ndim :], **meta}
    tifffile.imwrite(path, data, imagej=True, resolution=resolution, metadata=metadata)
    return path


def _write_ome_zarr(group: zarr.Group, data: np.ndarray, scale: list[float]) -> None:
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_multiscales_metadata

    group.create_array("0", shape=data.shape, chunks=(1, *data.shape[1:]), dtype=data.dtype)[:] = (
        data
    )
    write_multiscales_metadata(
        group,
        [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}],
        fmt=FormatV04(),
        axes=[
            {"name": "t", "type": "time", "unit": "second"},
            {"name": "y", "type": "space", "unit": "micrometer"},
            {"name": "x", "type": "space", "unit": "micrometer"},
        ],
    )


def _assert_not_square(video: Any, record: Any, name: str) -> None:
    """No pixel size is claimed, both sizes are kept and the warning names the file and
    points at this test (stacklevel)."""
    assert video.metadata.pixel_size is None
    assert video.metadata.calibration.pixel_size is None
    assert video.metadata.calibration.unit == "px"
    assert video.metadata.extra["pixel_size_yx"] == pytest.approx([0.87, 1.74])
    assert video.metadata.extra["pixel_unit"] == "um"
    [warning] = [w for w in record if issubclass(w.category, UserWarning)]
    assert name in str(warning.message)
    assert Path(warning.filename) == Path(__file__)


# -- bug 1: non-square pixels -------------------------------------------------------------


def test_imagej_tiff_with_non_square_pixels_claims_no_pixel_size(tmp_path, stack):
    path = _imagej(tmp_path / "aniso.tif", stack, (0.87, 1.74), finterval=3.0)
    with pytest.warns(UserWarning, match=NOT_SQUARE) as record:
        video = open_video(path)
    _assert_not_square(video, record, "aniso.tif")
    assert video.metadata.frame_interval == pytest.approx(3.0)  # the time axis is kept


def test_pixels_within_one_percent_are_square(tmp_path, stack):
    path = _imagej(tmp_path / "square.tif", stack, (0.654, 0.65))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        video = open_video(path)
    assert video.metadata.pixel_size == pytest.approx(0.65) and video.metadata.unit == "um"
    assert "pixel_size_yx" not in video.metadata.extra


def test_ome_tiff_with_non_square_pixels(tmp_path, stack):
    path = tmp_path / "aniso.ome.tif"
    metadata = {"axes": "TYX", "PhysicalSizeX": 1.74, "PhysicalSizeY": 0.87}
    tifffile.imwrite(path, stack, ome=True, metadata=metadata)
    with pytest.warns(UserWarning, match=NOT_SQUARE) as record:
        video = open_video(path)
    _assert_not_square(video, record, "aniso.ome.tif")


def test_ome_tiff_physical_size_y_in_another_unit_is_converted(tmp_path, stack):
    path = tmp_path / "mixed.ome.tif"
    metadata = {
        "axes": "TYX",
        "PhysicalSizeX": 0.5,
        "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": 500.0,
        "PhysicalSizeYUnit": "nm",
    }
    tifffile.imwrite(path, stack, ome=True, metadata=metadata)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        video = open_video(path)
    assert video.metadata.pixel_size == pytest.approx(0.5) and video.metadata.unit == "um"


def test_ome_zarr_with_non_square_pixels(tmp_path, stack):
    path = tmp_path / "aniso.ome.zarr"
    _write_ome_zarr(zarr.open_group(str(path), mode="w", zarr_format=2), stack, [2.0, 0.87, 1.74])
    with pytest.warns(UserWarning, match=NOT_SQUARE) as record:
        video = open_video(path)
    _assert_not_square(video, record, "aniso.ome.zarr")
    assert video.metadata.frame_interval == pytest.approx(2.0)


# -- bug 2: napari layers -----------------------------------------------------------------


def test_napari_layer_scale_and_units():
    from napari.layers import Image

    data = np.zeros((4, 8, 9), np.uint8)
    layer = Image(data, scale=(1, 0.87, 0.87), units=("minute", "micrometer", "micrometer"))
    cal = open_video(layer).metadata.calibration
    assert (cal.pixel_size, cal.unit) == (pytest.approx(0.87), "um")
    assert (cal.frame_interval, cal.time_unit) == (pytest.approx(1.0), "min")
    # a genuine 1 um pixel is kept
    layer = Image(data, scale=(30, 1, 1), units=("second", "micrometer", "micrometer"))
    cal = open_video(layer).metadata.calibration
    assert (cal.pixel_size, cal.unit, cal.frame_interval, cal.time_unit) == (1.0, "um", 30.0, "s")


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        (("millisecond", "millimeter", "millimeter"), (0.5, "mm", 2.0, "ms")),
        (("hour", "nanometer", "nanometer"), (0.5, "nm", 2.0, "h")),
        (("day", "meter", "meter"), (0.5, "m", 2.0, "d")),
        (("pixel", "micrometer", "micrometer"), (0.5, "um", None, "frame")),
        (("second", "pixel", "pixel"), (None, "px", 2.0, "s")),
    ],
)
def test_napari_layer_unit_names(units, expected):
    from napari.layers import Image

    layer = Image(np.zeros((4, 8, 9), np.uint8), scale=(2, 0.5, 0.5), units=units)
    cal = open_video(layer).metadata.calibration
    assert (cal.pixel_size, cal.unit, cal.frame_interval, cal.time_unit) == expected


def test_napari_layer_with_default_units_is_uncalibrated():
    from napari.layers import Image

    layer = Image(np.zeros((4, 8, 9), np.uint8), scale=(2, 0.5, 0.5))  # units: pixel
    meta = open_video(layer).metadata
    assert meta.pixel_size is None and meta.frame_interval is None
    assert (meta.calibration.unit, meta.calibration.time_unit) == ("px", "frame")


def test_napari_rgb_layer():
    from napari.layers import Image

    data = np.zeros((4, 8, 9, 3), np.uint8)
    layer = Image(data, rgb=True, scale=(5, 0.3, 0.3), units=("s", "um", "um"))
    assert layer.rgb
    video = open_video(layer)
    assert video.shape == (4, 8, 9, 3)
    cal = video.metadata.calibration
    assert (cal.pixel_size, cal.unit, cal.frame_interval) == (0.3, "um", 5.0)
    layer = Image(data, rgb=True, scale=(5, 0.87, 1.74), units=("s", "um", "um"), name="cells")
    with pytest.warns(UserWarning, match=NOT_SQUARE) as record:
        video = open_video(layer)
    _assert_not_square(video, record, "layer 'cells'")


# -- bug 6: folders of calibrated TIFF frames ---------------------------------------------


def test_folder_of_imagej_frames_keeps_their_calibration(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        frame = np.full((10, 12), i, np.uint16)
        _imagej(folder / f"t{i}.tif", frame, (0.325, 0.325), finterval=15.0)
    cal = open_video(folder).metadata.calibration
    assert (cal.pixel_size, cal.unit) == (pytest.approx(0.325), "um")
    assert (cal.frame_interval, cal.time_unit) == (pytest.approx(15.0), "s")


def test_folder_of_ome_tiff_frames_and_of_non_square_frames(tmp_path):
    ome = tmp_path / "ome"
    ome.mkdir()
    for i in range(3):
        metadata = {"axes": "YX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2}
        tifffile.imwrite(ome / f"t{i}.ome.tif", np.zeros((10, 12), np.uint8), metadata=metadata)
    cal = open_video(ome).metadata.calibration
    assert (cal.pixel_size, cal.unit, cal.frame_interval) == (pytest.approx(0.2), "um", None)
    aniso = tmp_path / "aniso"
    aniso.mkdir()
    for i in range(3):
        _imagej(aniso / f"t{i}.tif", np.zeros((10, 12), np.uint8), (0.87, 1.74))
    with pytest.warns(UserWarning, match=NOT_SQUARE) as record:
        video = open_video(aniso)
    _assert_not_square(video, record, "t0.tif")
    assert video.metadata.extra["files"] == ["t0.tif", "t1.tif", "t2.tif"]
