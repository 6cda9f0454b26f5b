"""Image layers as engine frames: grey, RGB, 16-bit and multi-channel, never copied."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image

from napari_sam2v._qt._layer_video import video_from_layer
from napari_sam2v.errors import InputError
from napari_sam2v.types import Calibration


def test_grey_16bit_layer_is_passed_through_without_copy() -> None:
    data = np.arange(4 * 16 * 20, dtype=np.uint16).reshape(4, 16, 20)
    video = video_from_layer(Image(data, scale=(2.0, 0.5, 0.5), units=("s", "um", "um")))
    assert video.frames is data
    assert video.frame_shape == (16, 20) and video.n_channels == 1 and not video.rgb
    assert video.calibration == Calibration(0.5, "micrometer", 2.0, "second")


def test_rgb_and_multichannel_layers() -> None:
    rgb = np.zeros((3, 16, 16, 3), np.uint8)
    video = video_from_layer(Image(rgb, rgb=True, metadata={"video_path": "/x/clip.mp4"}))
    assert video.rgb and video.frames is rgb and video.video_path == "/x/clip.mp4"
    tcyx = np.random.default_rng(0).integers(0, 4000, (5, 2, 16, 24), dtype=np.uint16)
    video = video_from_layer(Image(tcyx))
    assert video.n_channels == 2 and video.frames.shape == (5, 16, 24, 2)
    np.testing.assert_array_equal(video.frames[3][..., 1], tcyx[3, 1])
    single = video_from_layer(Image(tcyx[:, :1]))
    assert single.frames.shape == (5, 16, 24)
    np.testing.assert_array_equal(single.frames[2], tcyx[2, 0])


def test_scale_without_units_is_not_a_calibration() -> None:
    """napari's default unit is "pixel": such a scale has no physical meaning."""
    layer = Image(np.zeros((3, 16, 16), np.uint16), scale=(10.2, 0.87, 0.87))
    assert video_from_layer(layer).calibration == Calibration()
    timed = Image(np.zeros((3, 16, 16), np.uint16), scale=(0.5, 1.0, 1.0), units=("s", "px", "px"))
    assert video_from_layer(timed).calibration == Calibration(None, "px", 0.5, "second")


def test_sample_calibration_from_metadata() -> None:
    cal = {"pixel_size": 0.87, "unit": "um", "frame_interval": 10.2, "time_unit": "min"}
    layer = Image(np.zeros((3, 16, 16), np.uint16), metadata={"calibration": cal, "sample": "x"})
    video = video_from_layer(layer)
    assert video.calibration == Calibration(0.87, "um", 10.2, "min") and video.is_sample


def test_layers_without_time_axis_are_refused() -> None:
    with pytest.raises(InputError, match="single 2-D image"):
        video_from_layer(Image(np.zeros((16, 16)), name="still"))
    with pytest.raises(InputError, match="shape"):
        video_from_layer(Image(np.zeros((2, 2, 2, 16, 16)), name="5d"))
