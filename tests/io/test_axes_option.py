"""open_video(..., axes=...): the axes of data that does not name them, checked elsewhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image

from napari_sam2v.errors import InputError, VideoReadError
from napari_sam2v.io import open_video
from tests.io.conftest import assert_channels_last, write_mp4


@pytest.fixture
def ambiguous() -> np.ndarray:
    """(t, 3, 64, 3): either axis could be channels, so the shape alone is refused."""
    return np.random.default_rng(7).integers(0, 255, (4, 3, 64, 3)).astype(np.uint8)


def test_axes_settle_an_ambiguous_npy_either_way(tmp_path: Path, ambiguous: np.ndarray) -> None:
    path = tmp_path / "amb.npy"
    np.save(path, ambiguous)
    with pytest.raises(InputError, match=r"could both be channels.*axes='TCYX'"):
        open_video(path)
    tcyx = open_video(path, axes="tcyx")  # any case
    assert_channels_last(tcyx, ambiguous)
    assert tcyx.metadata.extra["array_axes"] == "TCYX"
    tyxc = open_video(path, axes="TYXC", channel=2)
    assert tyxc.shape == (4, 3, 64)
    np.testing.assert_array_equal(tyxc[1], ambiguous[1, ..., 2])


def test_inferred_axes_are_recorded_too() -> None:
    assert open_video(np.zeros((3, 2, 16, 16), np.uint8)).metadata.extra["array_axes"] == "TCYX"
    assert open_video(np.zeros((3, 16, 16), np.uint8)).metadata.extra["array_axes"] == "TYX"


def test_axes_open_more_than_16_channels() -> None:
    """(t, 20, y, x) reads as a z-stack over time and is refused without axes=."""
    data = np.random.default_rng(1).integers(0, 999, (3, 20, 32, 32)).astype(np.uint16)
    with pytest.raises(InputError, match="neither axis 1 nor axis 3"):
        open_video(data)
    video = open_video(data, axes="TCYX")
    assert video.shape == (3, 32, 32, 20)
    np.testing.assert_array_equal(open_video(data, axes="TCYX", channel=17)[2], data[2, 17])


def test_axes_name_a_plain_zarr_array(tmp_path: Path, ambiguous: np.ndarray) -> None:
    path = tmp_path / "plain.zarr"
    zarr.create_array(str(path), shape=ambiguous.shape, dtype="uint8")[:] = ambiguous
    video = open_video(path, axes="TYXC")
    assert video.shape == ambiguous.shape
    np.testing.assert_array_equal(video[3], ambiguous[3])
    assert video.metadata.extra["array_axes"] == "TYXC"


@pytest.mark.parametrize(
    ("axes", "match"),
    [
        ("TTYX", "is not valid"),
        ("TZYX", "is not valid"),
        ("TCCYX", "is not valid"),
        ("", "is not valid"),
        (3, "is not valid"),
        ("TYX", "has 3 letters but the data has 4 axes"),
    ],
)
def test_invalid_axes_are_refused(tmp_path: Path, ambiguous: np.ndarray, axes, match) -> None:
    path = tmp_path / "amb.npy"
    np.save(path, ambiguous)
    with pytest.raises(InputError, match=match) as info:
        open_video(path, axes=axes)
    assert str(path) in str(info.value) and "one letter per axis" in str(info.value)


def test_axes_name_the_axes_a_tiff_leaves_unnamed(tmp_path: Path) -> None:
    """tifffile names the axes of a 4-D TIFF without axes metadata Q, Q, Y, X."""
    data = np.random.default_rng(2).integers(0, 255, (5, 2, 16, 24)).astype(np.uint8)
    path = tmp_path / "q.tif"
    tifffile.imwrite(path, data, photometric="minisblack")
    with pytest.raises(VideoReadError, match=r"4-D TIFF without axes metadata.*axes='TCYX'"):
        open_video(path)
    video = open_video(path, axes="TCYX")
    assert_channels_last(video, data)
    assert video.metadata.extra["array_axes"] == "TCYX"
    video.close()
    with pytest.raises(InputError, match=r"contradict the axes the file names, 'QQYX'"):
        open_video(path, axes="TYXC")  # its axes 2 and 3 are Y and X


def test_axes_must_agree_with_an_imagej_file(tmp_path: Path) -> None:
    data = np.zeros((5, 2, 16, 24), np.uint8)
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TCYX"})
    assert open_video(path, axes="tcyx").shape == (5, 16, 24, 2)
    assert "array_axes" not in open_video(path, axes="TCYX").metadata.extra
    for wrong in ("TYXC", "TYX"):
        with pytest.raises(InputError, match=r"contradict its own axes, 'TCYX'") as info:
            open_video(path, axes=wrong)
        assert str(path) in str(info.value) and "leave it out" in str(info.value)
    grey = tmp_path / "grey.tif"
    tifffile.imwrite(grey, data[:, 0], imagej=True, metadata={"axes": "TYX"})
    assert open_video(grey, axes="TYX").shape == (5, 16, 24)
    assert open_video(grey, axes="TCYX").shape == (5, 16, 24)  # no channels: C is one entry


def test_axes_must_agree_with_an_ome_zarr_image(tmp_path: Path) -> None:
    """A (t, c, z, y, x) image with one plane: its own axes are TCYX."""
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_multiscales_metadata

    data = np.zeros((4, 2, 1, 16, 16), np.uint16)
    path = tmp_path / "image.ome.zarr"
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    group.create_array("0", shape=data.shape, dtype="uint16")[:] = data
    scale = [{"type": "scale", "scale": [1.0] * 5}]
    kinds = ["time", "channel", "space", "space", "space"]
    axes = [{"name": n, "type": t} for n, t in zip("tczyx", kinds, strict=True)]
    write_multiscales_metadata(
        group, [{"path": "0", "coordinateTransformations": scale}], fmt=FormatV04(), axes=axes
    )
    assert open_video(path, axes="TCYX").shape == (4, 16, 16, 2)
    with pytest.raises(InputError, match=r"contradict its own axes, 'TCYX'"):
        open_video(path, axes="TYXC")


def test_axes_must_agree_with_a_video(tmp_path: Path, index_cache: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_mp4(path, n_frames=4)
    assert open_video(path, axes="TYXC").shape == (4, 48, 64, 3)
    assert open_video(path, axes="TYXC", channel=1).shape == (4, 48, 64)
    with pytest.raises(InputError, match=r"contradict its own axes, 'TYXC'"):
        open_video(path, axes="TYX")


def test_axes_must_agree_with_an_image_folder(tmp_path: Path) -> None:
    for i in range(3):
        Image.fromarray(np.full((12, 10, 3), i, np.uint8)).save(tmp_path / f"f{i}.png")
    assert open_video(tmp_path, axes="TYXC", channel=0).shape == (3, 12, 10)
    with pytest.raises(InputError, match=r"contradict its own axes, 'TYXC'"):
        open_video(tmp_path, axes="TCYX")


def test_axes_and_layers(ambiguous: np.ndarray) -> None:
    class Layer:  # duck-typed napari Image layer
        def __init__(self, data: np.ndarray, *, rgb: bool) -> None:
            self.data, self.rgb, self.name = data, rgb, "cells"
            self.scale = (1.0,) * (data.ndim - (1 if rgb else 0))
            self.units = ("pixel",) * len(self.scale)

    assert open_video(Layer(ambiguous, rgb=False), axes="TCYX").shape == (4, 64, 3, 3)
    assert open_video(Layer(ambiguous, rgb=True), axes="TYXC").shape == ambiguous.shape
    with pytest.raises(InputError, match=r"layer 'cells': axes='TCYX' contradict its own"):
        open_video(Layer(ambiguous, rgb=True), axes="TCYX")  # an RGB layer is (t, y, x, c)


def test_axes_cannot_change_an_opened_source() -> None:
    video = open_video(np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(InputError, match="axes cannot be changed"):
        open_video(video, axes="TYX")
