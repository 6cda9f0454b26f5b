"""Multi-channel videos in napari: one ``(t, y, x)`` Image layer per channel.

napari lines layers of different dimensionality up by their *last* axes. The result
of a session is a ``(t, y, x)`` Labels layer (the store's labels), so beside a
``(t, c, y, x)`` Image layer its time axis would land on the channel slider: the mask
of frame 0 shown on every frame, paint written into the wrong frame. napari's own
answer for channels is one layer per channel (``add_image(..., channel_axis=)``), and
that is what this module gives a channel stack before a session uses it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_sam2v._napari_io import channel_layers
from napari_sam2v._qt._layer_video import layer_source_path

__all__ = ["add_frames_layer", "is_channel_stack", "layer_to_track", "split_channel_stack"]


def is_channel_stack(layer: Any) -> bool:
    """Whether ``layer`` is a non-RGB ``(t, c, y, x)`` Image layer."""
    if layer is None or getattr(layer, "rgb", False):
        return False
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    return len(getattr(data, "shape", ())) == 4


def _channel_of(data: Any, channel: int) -> Any:
    """Channel ``channel`` of ``(t, c, y, x)`` data as ``(t, y, x)``, without reading it."""
    if isinstance(data, np.ndarray):
        return data[:, channel]  # a view
    import dask.array as da

    if not isinstance(data, da.Array):  # zarr, h5py, ...: read frame by frame on demand
        data = da.from_array(data, chunks=(1, 1, *data.shape[2:]))
    return data[:, channel]


def _without_channel(values: Any) -> list[Any]:
    return [v for k, v in enumerate(values) if k != 1]


def split_channel_stack(viewer: Any, layer: Any) -> list[Any]:
    """Replace a ``(t, c, y, x)`` Image layer by one ``(t, y, x)`` layer per channel.

    The channel layers show the same (lazy) data: nothing is copied or read. They
    keep the stack's scale, translate, units and axis labels for ``t, y, x``, its
    metadata with the channel index added (``metadata["channel"]``), and the file
    it came from (``metadata["video_path"]``), so a result store can refer to that
    file and channel instead of copying the frames.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer holding ``layer``.
    layer : napari.layers.Image
        A channel stack (:func:`is_channel_stack`).

    Returns
    -------
    list of napari.layers.Image
        The channel layers, in channel order, where the stack was in the layer list.
    """
    from napari.layers import Image

    levels = list(layer.data) if layer.multiscale else [layer.data]
    n_channels = int(levels[0].shape[1])
    source = layer_source_path(layer)
    metadata = dict(layer.metadata or {})
    if source:
        metadata["video_path"] = source
    each = channel_layers(layer.name, n_channels, metadata)
    units = [str(u) for u in layer.units]
    channels = []
    for c in range(n_channels):
        parts = [_channel_of(level, c) for level in levels]
        channels.append(
            Image(
                parts if layer.multiscale else parts[0],
                multiscale=layer.multiscale,
                name=each["name"][c],
                scale=_without_channel(layer.scale),
                translate=_without_channel(layer.translate),
                units=_without_channel(units),
                axis_labels=_without_channel(layer.axis_labels),
                metadata=each["metadata"][c],
                colormap=each["colormap"][c] if n_channels > 1 else layer.colormap,
                blending="additive" if c else layer.blending,
                visible=layer.visible,
            )
        )
    index = viewer.layers.index(layer)
    for offset, channel_layer in enumerate(channels):
        viewer.layers.insert(index + 1 + offset, channel_layer)
    viewer.layers.remove(layer)
    return channels


def add_frames_layer(viewer: Any, frames: Any, name: str, *, channel: int | None = None) -> Any:
    """Show a session's frames (a store's copy or its video); the layer to track on.

    ``(t, y, x, c)`` multi-channel frames become one layer per channel, as a channel
    stack is split (:func:`split_channel_stack`); the layer of ``channel`` is returned.
    """
    data = frames.to_dask() if hasattr(frames, "to_dask") else frames
    shape = tuple(frames.shape)
    rgb = len(shape) == 4 and shape[-1] in (3, 4)
    if len(shape) != 4 or rgb:
        return viewer.add_image(data, name=name, rgb=rgb)
    n_channels = int(shape[-1])
    layers = viewer.add_image(data, channel_axis=3, **channel_layers(name, n_channels, {}))
    return layers[min(channel or 0, n_channels - 1)]


def layer_to_track(viewer: Any, layer: Any, channel: int) -> Any:
    """The layer a session tracks: ``layer``, or its ``channel`` once a stack is split.

    A ``(t, c, y, x)`` stack is split (:func:`split_channel_stack`) and the user is
    told why; any other layer (or ``None``) is returned as it is.
    """
    if layer is None or not is_channel_stack(layer):
        return layer
    from napari.utils.notifications import show_info

    channels = split_channel_stack(viewer, layer)
    chosen = channels[min(max(channel, 0), len(channels) - 1)]
    show_info(
        f"{layer.name} is now one layer per channel: napari lines layers up by their last "
        f"axes, so the (t, y, x) result would not line up with a (t, c, y, x) layer. "
        f"Tracking on {chosen.name}."
    )
    return chosen
