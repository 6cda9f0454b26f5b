"""The channel axis of 4-D arrays without axis names (.npy, plain zarr, numpy, layers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from napari_sam2v.errors import InputError
from napari_sam2v.io import open_video
from napari_sam2v.io._axes import plain_axes
from tests.io.conftest import assert_channels_last


@pytest.fixture
def tcyx() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 4000, (5, 2, 40, 56)).astype(np.uint16)


def test_tcyx_npy_is_read_with_its_channels_second(tmp_path: Path, tcyx: np.ndarray) -> None:
    path = tmp_path / "cells.npy"
    np.save(path, tcyx)
    video = open_video(path)
    assert video.frame_shape == (40, 56)  # was (2, 56): y and x taken from c and y
    assert_channels_last(video, tcyx)
    one = open_video(path, channel=1)
    assert one.shape == (5, 40, 56)
    np.testing.assert_array_equal(one[4], tcyx[4, 1])


def test_tcyx_zarr_array_is_read_with_its_channels_second(tmp_path: Path, tcyx: np.ndarray) -> None:
    path = tmp_path / "plain.zarr"
    arr = zarr.create_array(str(path), shape=tcyx.shape, chunks=(1, 2, 40, 56), dtype="uint16")
    arr[:] = tcyx
    video = open_video(path, channel=0)
    assert video.shape == (5, 40, 56)
    np.testing.assert_array_equal(video[2], tcyx[2, 0])


class _Recording:
    """An array that records how it is indexed (nothing may read the whole array)."""

    def __init__(self, data: np.ndarray) -> None:
        self._data, self.shape, self.dtype = data, data.shape, data.dtype
        self.keys: list[Any] = []

    def __getitem__(self, key: Any) -> np.ndarray:
        self.keys.append(key)
        return self._data[key]


def test_tcyx_arrays_are_transposed_frame_by_frame(tcyx: np.ndarray) -> None:
    array = _Recording(tcyx)
    video = open_video(array)
    assert array.keys == []
    np.testing.assert_array_equal(video[4], np.moveaxis(tcyx[4], 0, -1))
    assert array.keys == [(4, slice(None), slice(None), slice(None))]


@pytest.mark.parametrize(
    ("shape", "axes"),
    [
        ((6, 20, 30), "TYX"),
        ((6, 480, 640, 3), "TYXC"),  # RGB video frames
        ((6, 64, 64, 4), "TYXC"),
        ((6, 61, 40, 5), "TYXC"),  # 5 channels, last
        ((6, 8, 8, 3), "TYXC"),  # a tiny frame: 8 rows cannot be channels of 8x3
        ((6, 2, 20, 24), "TCYX"),
        ((6, 1, 20, 24), "TCYX"),  # a singleton channel axis
        ((6, 8, 512, 512), "TCYX"),  # 8 channels, second
    ],
)
def test_plain_axes(shape: tuple[int, ...], axes: str) -> None:
    assert plain_axes(shape, "a") == axes


@pytest.mark.parametrize(
    ("shape", "why"),
    [
        ((6, 3, 64, 3), "could both be channels"),
        ((6, 40, 64, 64), "neither axis 1 nor axis 3"),  # a z-stack over time
        ((6, 20, 64, 64), "neither axis 1 nor axis 3"),
    ],
)
def test_ambiguous_4d_arrays_are_refused_with_the_fix(
    tmp_path: Path, shape: tuple[int, ...], why: str
) -> None:
    path = tmp_path / "stack.npy"
    np.save(path, np.zeros(shape, np.uint8))
    with pytest.raises(InputError, match=why) as info:
        open_video(path)
    message = str(info.value)
    assert str(path) in message and str(shape) in message
    assert "np.save(path, a[:, c])" in message and "names its axes" in message


def test_layers(tcyx: np.ndarray) -> None:
    class Layer:  # duck-typed napari Image layer
        def __init__(self, data: np.ndarray, *, rgb: bool) -> None:
            self.data, self.rgb = data, rgb
            self.scale = (1.0,) * (data.ndim - (1 if rgb else 0))
            self.units = ("pixel",) * len(self.scale)

    assert_channels_last(open_video(Layer(tcyx, rgb=False)), tcyx)  # napari's (t, c, y, x)
    last = np.moveaxis(tcyx, 1, -1)  # the napari reader's multi-channel frames
    assert open_video(Layer(last, rgb=False)).shape == (5, 40, 56, 2)
    rgb = np.zeros((3, 4, 4, 3), np.uint8)  # RGB says it, whatever the shape
    assert open_video(Layer(rgb, rgb=True)).shape == (3, 4, 4, 3)
