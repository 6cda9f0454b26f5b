"""Lazy frame access and robust intensity normalisation shared by all engines.

Engines accept any frame-indexed array-like (numpy, dask, zarr, a
:class:`~napari_sam2v.io.VideoSource`) with axes ``(t, y, x)`` or ``(t, y, x, c)``.
:class:`FrameNormalizer` turns one frame at a time into float32 values in ``[0, 1]``
without ever materialising the video:

* ``uint8`` data is divided by 255 (camera footage is already display-ready);
* any other dtype (16-bit microscopy, floats) is stretched between low/high
  percentiles computed **once over frames sampled from the whole video**, not per
  frame, so real intensity changes over time survive normalisation;
* multi-channel stacks need a ``channel`` unless they are RGB(A).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_sam2v.errors import InputError

__all__ = ["MIN_FRAME_SIZE", "FrameNormalizer", "check_frame_size", "frame_count", "frame_shape"]

#: Smallest frame height and width (pixels) the engines accept.
MIN_FRAME_SIZE = 8


def check_frame_size(height: int, width: int) -> None:
    """Refuse frames smaller than :data:`MIN_FRAME_SIZE` on a side.

    Raises
    ------
    InputError
        If ``height`` or ``width`` is below :data:`MIN_FRAME_SIZE`.
    """
    if height < MIN_FRAME_SIZE or width < MIN_FRAME_SIZE:
        raise InputError(
            f"frames of {width}x{height} pixels are too small "
            f"(min {MIN_FRAME_SIZE}x{MIN_FRAME_SIZE})"
        )


def frame_count(frames: Any) -> int:
    """Number of frames of an array-like with time as the first axis."""
    return int(frames.shape[0])


def frame_shape(frames: Any) -> tuple[int, int]:
    """``(height, width)`` of an array-like with axes ``(t, y, x[, c])``."""
    return int(frames.shape[1]), int(frames.shape[2])


class FrameNormalizer:
    """Read frames lazily and normalise them to float32 in ``[0, 1]``.

    Parameters
    ----------
    frames : array-like
        Frame-indexed array with axes ``(t, y, x)`` or ``(t, y, x, c)``.
    channel : int, optional
        Channel to use for multi-channel data. Required when ``c`` is not 3 or 4
        (RGB/RGBA); ignored for single-channel data.
    percentiles : tuple of float, optional
        Low and high percentiles for non-``uint8`` data.
    n_sample_frames : int, optional
        Number of evenly spaced frames used to estimate the percentiles.

    Raises
    ------
    InputError
        If the array has the wrong number of axes, no frames, an invalid channel,
        or only non-finite values in the sampled frames.
    """

    def __init__(
        self,
        frames: Any,
        *,
        channel: int | None = None,
        percentiles: tuple[float, float] = (0.5, 99.5),
        n_sample_frames: int = 16,
    ) -> None:
        shape = tuple(getattr(frames, "shape", ()))
        if len(shape) not in (3, 4):
            raise InputError(f"frames must have axes (t, y, x) or (t, y, x, c); got shape {shape}")
        if shape[0] < 1:
            raise InputError("the video has no frames")
        check_frame_size(int(shape[1]), int(shape[2]))
        self.frames = frames
        self.n_frames = int(shape[0])
        self.shape = (int(shape[1]), int(shape[2]))
        self.dtype = np.dtype(getattr(frames, "dtype", np.float32))
        n_channels = 1 if len(shape) == 3 else int(shape[3])
        self.rgb = n_channels in (3, 4) and channel is None
        if n_channels > 1 and not self.rgb:
            if channel is None:
                raise InputError(
                    f"the frames have {n_channels} channels: "
                    f"choose one, 0..{n_channels - 1} (--channel, channel=)"
                )
            if not 0 <= int(channel) < n_channels:
                raise InputError(f"channel {channel} does not exist (0..{n_channels - 1})")
        self.channel = None if n_channels == 1 or self.rgb or channel is None else int(channel)
        self._multichannel = n_channels > 1
        if self.dtype == np.uint8:
            self.low = np.zeros(3 if self.rgb else 1, np.float32)
            self.high = np.full_like(self.low, 255.0)
        else:
            self.low, self.high = self._estimate_range(percentiles, n_sample_frames)

    def _select(self, raw: np.ndarray) -> np.ndarray:
        if not self._multichannel:
            return raw[..., None]
        if self.rgb:
            return raw[..., :3]
        channel = self.channel or 0  # set whenever the data has several channels and no RGB
        return raw[..., channel : channel + 1]

    def _estimate_range(
        self, percentiles: tuple[float, float], n_sample: int
    ) -> tuple[np.ndarray, np.ndarray]:
        idx = np.unique(np.linspace(0, self.n_frames - 1, min(n_sample, self.n_frames)).astype(int))
        lows, highs = [], []
        for i in idx:
            data = self._select(np.asarray(self.frames[int(i)])).astype(np.float32)
            flat = data.reshape(-1, data.shape[-1])
            finite = np.isfinite(flat).all(axis=1)
            if not finite.any():
                continue
            lo, hi = np.percentile(flat[finite], percentiles, axis=0)
            lows.append(lo)
            highs.append(hi)
        if not lows:
            raise InputError("the sampled frames contain no finite pixel values (all NaN/inf)")
        low = np.min(lows, axis=0).astype(np.float32)
        high = np.max(highs, axis=0).astype(np.float32)
        high = np.where(high > low, high, low + 1.0).astype(np.float32)
        return low, high

    def raw(self, index: int) -> np.ndarray:
        """Return frame ``index`` as stored, with the channel selection applied.

        Returns
        -------
        ndarray
            ``(H, W)`` for single-channel data, ``(H, W, 3)`` for RGB.
        """
        if not -self.n_frames <= index < self.n_frames:
            raise InputError(f"frame {index} is out of range (0..{self.n_frames - 1})")
        data = np.asarray(self.frames[int(index)])
        if data.shape[:2] != self.shape:
            raise InputError(
                f"frame {index} has shape {data.shape[:2]}, expected {self.shape}: "
                "all frames must have the same size"
            )
        sel = self._select(data)
        return sel if self.rgb else sel[..., 0]

    def normalized(self, index: int) -> np.ndarray:
        """Frame ``index`` as float32 in ``[0, 1]``, ``(H, W)`` or ``(H, W, 3)``.

        Raises
        ------
        InputError
            If the frame contains NaN or infinite values.
        """
        data = self.raw(index).astype(np.float32, copy=False)
        if not np.isfinite(data).all():
            raise InputError(
                f"frame {index} contains NaN or infinite values; clean the data or "
                "replace them (e.g. numpy.nan_to_num) before tracking"
            )
        low = self.low if self.rgb else self.low[0]
        high = self.high if self.rgb else self.high[0]
        out = (data - low) / (high - low)
        return np.clip(out, 0.0, 1.0, out=out)

    def rgb_frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as float32 RGB ``(H, W, 3)`` in ``[0, 1]`` (grey replicated)."""
        data = self.normalized(index)
        if data.ndim == 2:
            data = np.repeat(data[..., None], 3, axis=2)
        return data

    def gray_frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as float32 grey ``(H, W)`` in ``[0, 1]`` (luma for RGB)."""
        data = self.normalized(index)
        if data.ndim == 3:
            data = data @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return data
