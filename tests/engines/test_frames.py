"""Tests for lazy frame normalisation shared by the engines."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam2v.engines.frames import FrameNormalizer
from napari_sam2v.errors import InputError


def test_uint8_rgb_is_divided_by_255() -> None:
    frames = np.full((2, 16, 16, 3), 51, np.uint8)
    norm = FrameNormalizer(frames)
    assert norm.rgb
    np.testing.assert_allclose(norm.rgb_frame(0), 0.2, atol=1e-6)
    assert norm.gray_frame(1).shape == (16, 16)


def test_16bit_uses_global_percentiles_so_changes_survive() -> None:
    frames = np.zeros((4, 16, 16), np.uint16)
    for t in range(4):
        frames[t] = 1000 * (t + 1)  # brightness rises over time
    norm = FrameNormalizer(frames, percentiles=(0, 100))
    means = [float(norm.normalized(t).mean()) for t in range(4)]
    assert means == sorted(means) and means[0] == 0.0 and means[-1] == 1.0
    rgb = norm.rgb_frame(3)
    assert rgb.shape == (16, 16, 3) and np.all(rgb == 1.0)


def test_channel_selection() -> None:
    frames = np.zeros((2, 16, 16, 2), np.uint16)
    frames[..., 1] = 7
    with pytest.raises(InputError, match=r"choose one, 0\.\.1 \(--channel"):
        FrameNormalizer(frames)
    with pytest.raises(InputError, match="does not exist"):
        FrameNormalizer(frames, channel=2)
    assert np.all(FrameNormalizer(frames, channel=1).raw(0) == 7)


@pytest.mark.parametrize(
    ("shape", "message"),
    [((16, 16), "axes"), ((0, 16, 16), "no frames"), ((2, 4, 16), "too small")],
)
def test_bad_shapes(shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(InputError, match=message):
        FrameNormalizer(np.zeros(shape, np.uint8))


def test_non_finite_values() -> None:
    frames = np.ones((3, 16, 16), np.float32)
    frames[1, 0, 0] = np.inf
    norm = FrameNormalizer(frames)
    with pytest.raises(InputError, match="frame 1 contains NaN or infinite"):
        norm.normalized(1)
    with pytest.raises(InputError, match="no finite pixel values"):
        FrameNormalizer(np.full((2, 16, 16), np.nan, np.float32))
    with pytest.raises(InputError, match="out of range"):
        norm.raw(3)
