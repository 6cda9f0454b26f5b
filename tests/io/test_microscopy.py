"""open_video(): TIFF stacks, image folders, zarr / OME-Zarr, arrays and layers."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image

from napari_sam2v.errors import InputError, VideoReadError
from napari_sam2v.io import open_video


@pytest.fixture
def stack() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 4000, (6, 2, 20, 24)).astype(np.uint16)


def test_imagej_tcyx_is_reordered_with_calibration(tmp_path, stack):
    path = tmp_path / "cells.tif"
    tifffile.imwrite(
        path,
        stack,
        imagej=True,
        resolution=(1 / 0.65, 1 / 0.65),
        metadata={"axes": "TCYX", "finterval": 30.0, "unit": "micron"},
    )
    video = open_video(path)
    assert video.shape == (6, 20, 24, 2)
    np.testing.assert_array_equal(video[4], stack[4].transpose(1, 2, 0))
    cal = video.metadata.calibration
    assert cal.pixel_size == pytest.approx(0.65) and cal.unit == "um"
    assert cal.frame_interval == pytest.approx(30.0) and cal.time_unit == "s"
    assert video.metadata.extra["original_axes"] == "TCYX"
    one = open_video(path, channel=1)
    assert one.shape == (6, 20, 24)
    np.testing.assert_array_equal(one[2], stack[2, 1])
    with pytest.raises(InputError, match="channel 5 does not exist"):
        open_video(path, channel=5)


@pytest.mark.parametrize(
    ("unit", "tunit", "expected"),
    [
        ("\\u00B5m", "min", ("um", "min")),  # how ImageJ writes the micro sign
        ("micron", "sec", ("um", "s")),
        ("nanometer", "hours", ("nm", "h")),
    ],
)
def test_imagej_unit_spellings_become_abbreviations(tmp_path, stack, unit, tunit, expected):
    """ImageJ's spellings of units are read as the abbreviations every other reader gives."""
    path = tmp_path / "cells.tif"
    metadata = {"axes": "TCYX", "finterval": 2.0, "unit": unit, "tunit": tunit}
    tifffile.imwrite(path, stack, imagej=True, resolution=(2.0, 2.0), metadata=metadata)
    cal = open_video(path, channel=0).metadata.calibration
    assert (cal.unit, cal.time_unit) == expected
    assert cal.pixel_size == pytest.approx(0.5) and cal.frame_interval == pytest.approx(2.0)


def test_plain_tyx_tiff_and_rgb_tiff(tmp_path, stack):
    gray = tmp_path / "gray.tif"
    tifffile.imwrite(gray, stack[:, 0])
    video = open_video(gray)
    assert video.shape == (6, 20, 24) and video.metadata.calibration.pixel_size is None
    np.testing.assert_array_equal(video.to_dask().compute(), stack[:, 0])
    rgb = tmp_path / "rgb.tif"
    data = np.random.default_rng(0).integers(0, 255, (4, 16, 16, 3)).astype(np.uint8)
    tifffile.imwrite(rgb, data, photometric="rgb")
    video = open_video(rgb)
    assert video.shape == (4, 16, 16, 3)
    np.testing.assert_array_equal(video[3], data[3])


def test_ome_tiff_physical_sizes(tmp_path, stack):
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(
        path,
        stack,
        ome=True,
        metadata={
            "axes": "TCYX",
            "PhysicalSizeX": 0.2,
            "PhysicalSizeXUnit": "µm",
            "TimeIncrement": 5.0,
            "TimeIncrementUnit": "s",
        },
    )
    video = open_video(path, channel=0)
    assert video.shape == (6, 20, 24)
    assert video.metadata.pixel_size == pytest.approx(0.2) and video.metadata.unit == "um"
    assert video.metadata.frame_interval == pytest.approx(5.0)


def test_5d_tiff_without_axes_is_refused(tmp_path):
    path = tmp_path / "five.tif"
    tifffile.imwrite(path, np.zeros((2, 3, 4, 16, 16), np.uint8), photometric="minisblack")
    with pytest.raises(VideoReadError, match="five.tif.*axes"):
        open_video(path)


def test_single_frame_inputs_are_refused(tmp_path):
    path = tmp_path / "single.tif"
    tifffile.imwrite(path, np.zeros((16, 16), np.uint8))
    with pytest.raises(VideoReadError, match="single.tif.*at least 2 frames"):
        open_video(path)
    with pytest.raises(VideoReadError, match="at least 2 frames"):
        open_video(np.zeros((1, 16, 16), np.uint8))


def test_planar_rgb_tiff_is_one_frame_with_a_hint(tmp_path):
    # tifffile stores a (3, y, x) array as one RGB image with separate planes
    rgb = tmp_path / "planes.tif"
    tifffile.imwrite(
        rgb, np.zeros((3, 16, 16), np.uint8), photometric="rgb", planarconfig="separate"
    )
    with pytest.raises(VideoReadError, match="colour samples.*minisblack"):
        open_video(rgb)
    # the same planes as pages are three frames
    pages = tmp_path / "pages.tif"
    tifffile.imwrite(pages, np.zeros((3, 16, 16), np.uint8), photometric="minisblack")
    assert open_video(pages).shape == (3, 16, 16)


def test_corrupt_tiff(tmp_path):
    path = tmp_path / "bad.tif"
    path.write_bytes(b"II*\x00" + b"\xff" * 50)
    with pytest.raises(VideoReadError, match="bad.tif"):
        open_video(path)


def test_png_folder_in_natural_order(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    frames = np.zeros((12, 10, 14), np.uint8)
    for i in range(12):
        frames[i] = i * 10
        Image.fromarray(frames[i]).save(folder / f"img{i}.png")
    (folder / "notes.txt").write_text("ignored")
    video = open_video(folder)
    assert video.shape == (12, 10, 14) and video.metadata.kind == "folder"
    assert [int(video[i][0, 0]) for i in range(12)] == [i * 10 for i in range(12)]
    assert video.metadata.extra["files"][:3] == ["img0.png", "img1.png", "img2.png"]


def test_rgb_jpeg_folder_and_channel(tmp_path):
    folder = tmp_path / "rgb"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 12, 3), (i * 40, 100, 200), np.uint8)).save(
            folder / f"f{i:02d}.png"
        )
    video = open_video(folder)
    assert video.shape == (3, 8, 12, 3)
    assert open_video(folder, channel=2).shape == (3, 8, 12)
    assert int(open_video(folder, channel=0)[2][0, 0]) == 80


def test_folder_with_mixed_sizes_or_no_images(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(folder / "a1.png")
    Image.fromarray(np.zeros((12, 10), np.uint8)).save(folder / "a2.png")
    with pytest.raises(VideoReadError, match="a2.png.*same size"):
        open_video(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VideoReadError, match="no image frames"):
        open_video(empty)
    broken = tmp_path / "broken"
    broken.mkdir()
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(broken / "a1.png")
    (broken / "a2.png").write_bytes(b"not a png")
    with pytest.raises(VideoReadError, match="a2.png"):
        open_video(broken)


def test_zarr_array_and_ome_zarr_image(tmp_path, stack):
    plain = tmp_path / "plain.zarr"
    arr = zarr.create_array(str(plain), shape=(6, 20, 24), chunks=(1, 20, 24), dtype="uint16")
    arr[:] = stack[:, 0]
    video = open_video(plain)
    np.testing.assert_array_equal(video[5], stack[5, 0])
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_multiscales_metadata

    ome = tmp_path / "image.ome.zarr"
    group = zarr.open_group(str(ome), mode="w", zarr_format=2)
    group.create_array("0", shape=stack.shape, chunks=(1, 2, 20, 24), dtype="uint16")[:] = stack
    write_multiscales_metadata(
        group,
        [
            {
                "path": "0",
                "coordinateTransformations": [{"type": "scale", "scale": [2.0, 1.0, 0.5, 0.5]}],
            }
        ],
        fmt=FormatV04(),
        axes=[
            {"name": "t", "type": "time", "unit": "second"},
            {"name": "c", "type": "channel"},
            {"name": "y", "type": "space", "unit": "micrometer"},
            {"name": "x", "type": "space", "unit": "micrometer"},
        ],
    )
    video = open_video(ome, channel=1)
    assert video.shape == (6, 20, 24)
    np.testing.assert_array_equal(video[3], stack[3, 1])
    assert video.metadata.pixel_size == pytest.approx(0.5) and video.metadata.unit == "um"
    assert video.metadata.frame_interval == pytest.approx(2.0)


def test_numpy_dask_and_layer_like_inputs():
    data = np.arange(4 * 8 * 9, dtype=np.float32).reshape(4, 8, 9)
    video = open_video(data)
    np.testing.assert_array_equal(video[2], data[2])
    import dask.array as da

    lazy = open_video(da.from_array(data, chunks=(1, 8, 9)))
    np.testing.assert_array_equal(lazy[3], data[3])

    class Layer:  # duck-typed napari Image layer
        def __init__(self) -> None:
            self.data = data
            self.scale = (2.0, 0.3, 0.3)
            self.units = ("second", "micrometer", "micrometer")

    cal = open_video(Layer()).metadata.calibration
    assert (cal.pixel_size, cal.unit, cal.frame_interval, cal.time_unit) == (0.3, "um", 2.0, "s")
    with pytest.raises(InputError, match="shape"):
        open_video(np.zeros((8, 9)))
    with pytest.raises(InputError, match="cannot open"):
        open_video(42)
    with pytest.raises(InputError, match="dtype"):
        open_video(np.zeros((3, 8, 9), dtype=complex))
