"""Turn a napari Image layer into lazy frames for the engine (no copies, no temp files)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_sam2v.errors import InputError
from napari_sam2v.io import VideoMetadata, layer_fields
from napari_sam2v.types import Calibration

__all__ = ["ChannelsLast", "LayerVideo", "default_store", "layer_source_path", "video_from_layer"]


class ChannelsLast:
    """A lazy ``(t, y, x, c)`` view of ``(t, c, y, x)`` data, one frame at a time.

    Parameters
    ----------
    data : array-like
        Frame-indexed ``(t, c, y, x)`` array (numpy, dask, zarr, ...).
    """

    def __init__(self, data: Any) -> None:
        t, c, y, x = data.shape
        self.data = data
        self.shape = (t, y, x, c)
        self.dtype = np.dtype(data.dtype)
        self.ndim = 4

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: int) -> np.ndarray:
        return np.moveaxis(np.asarray(self.data[int(index)]), 0, -1)


@dataclass(frozen=True)
class LayerVideo:
    """Frames of an Image layer as the engine sees them.

    Parameters
    ----------
    frames : array-like
        ``(t, y, x)`` or ``(t, y, x, c)``, read lazily from the layer's own data.
    n_channels : int
        Number of non-RGB channels (1 for grey and RGB video).
    rgb : bool
        Whether the frames are RGB(A).
    video_path : str or None
        Source file, when napari or the sample recorded one.
    calibration : Calibration
        Calibration from the layer metadata, else from its scale.
    is_sample : bool
        Whether the layer is a bundled sample (its folder is not for results).
    channel : int or None
        For one channel of a multi-channel file (a layer split from a channel stack):
        that channel of ``video_path``.
    """

    frames: Any
    n_channels: int
    rgb: bool
    video_path: str | None
    calibration: Calibration
    is_sample: bool = False
    channel: int | None = None

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])


def _calibration(layer: Any) -> Calibration:
    meta = getattr(layer, "metadata", {}) or {}
    given = meta.get("calibration")
    if isinstance(given, Calibration):
        return given
    if isinstance(given, dict):
        return Calibration.from_dict(given)
    return VideoMetadata(**layer_fields(layer)).calibration


def layer_source_path(layer: Any) -> str | None:
    """The file a layer's frames come from, as its metadata or napari's reader says."""
    meta = getattr(layer, "metadata", {}) or {}
    for key in ("video_path", "source_path", "path"):
        if meta.get(key):
            return str(meta[key])
    source = getattr(getattr(layer, "source", None), "path", None)
    return str(source) if source else None


def video_from_layer(layer: Any) -> LayerVideo:
    """Describe an Image layer as a video without reading or copying its pixels.

    Parameters
    ----------
    layer : napari.layers.Image
        Image layer with time as its first axis: ``(t, y, x)``, RGB ``(t, y, x, 3)``
        or multi-channel ``(t, c, y, x)``. Multiscale layers use their full resolution.

    Returns
    -------
    LayerVideo

    Raises
    ------
    InputError
        For layers without a time axis or with more than four axes.
    """
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    rgb = bool(getattr(layer, "rgb", False))
    name = getattr(layer, "name", "layer")
    ndim = len(data.shape)
    spatial = ndim - (1 if rgb else 0)
    if spatial == 2:
        raise InputError(
            f"layer {name!r} is a single 2-D image: a video needs a time axis (t, y, x)"
        )
    if spatial > 4 or (rgb and spatial != 3):
        raise InputError(
            f"layer {name!r} has shape {tuple(data.shape)}: use (t, y, x), (t, y, x, 3) "
            "or (t, c, y, x)"
        )
    n_channels = 1
    frames = data
    if not rgb and ndim == 4:
        n_channels = int(data.shape[1])
        frames = ChannelsLast(data) if n_channels > 1 else _squeeze_channel(data)
    meta = getattr(layer, "metadata", {}) or {}
    channel = meta.get("channel") if ndim == 3 and not rgb else None
    return LayerVideo(
        frames,
        n_channels,
        rgb,
        layer_source_path(layer),
        _calibration(layer),
        is_sample=bool(meta.get("sample")),
        channel=channel if isinstance(channel, int) and channel >= 0 else None,
    )


class _SingleChannel:
    def __init__(self, data: Any) -> None:
        t, _, y, x = data.shape
        self.data, self.shape, self.dtype, self.ndim = data, (t, y, x), np.dtype(data.dtype), 3

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: int) -> np.ndarray:
        return np.asarray(self.data[int(index)])[0]


def _squeeze_channel(data: Any) -> _SingleChannel:
    return _SingleChannel(data)


def default_store(layer_name: str, video: LayerVideo) -> Path:
    """Default result store: beside the video file, else in ``~/napari-sam2v/``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in layer_name) or "video"
    if video.video_path and not video.is_sample:
        source = Path(video.video_path)
        return source.with_name(f"{source.stem}_sam2v.zarr")
    return Path.home() / "napari-sam2v" / f"{safe}_sam2v.zarr"
