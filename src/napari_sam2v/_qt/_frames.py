"""The frame a layer shows, and showing a frame, in that layer's own time axis.

napari's dims slider counts steps of the world, not frames of a layer: with another
layer on a finer or shifted time axis (a store opened by another reader, a layer
scaled in minutes), step 20 is not frame 20. Every "this frame" action goes through
these two functions, so it acts on the frame the layer shows.
"""

from __future__ import annotations

from typing import Any

__all__ = ["layer_frame", "show_frame"]


def _time_axis(viewer: Any, layer: Any) -> int:
    """The world axis of the layer's first (time) axis."""
    return int(viewer.dims.ndim) - int(layer.ndim)


def layer_frame(viewer: Any, layer: Any, n_frames: int) -> int:
    """The frame of ``layer`` on screen, in ``0..n_frames - 1``.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer.
    layer : napari.layers.Layer
        A layer whose first axis is time.
    n_frames : int
        Frames of the layer.

    Returns
    -------
    int
    """
    axis = _time_axis(viewer, layer)
    world = float(viewer.dims.point[axis])
    frame = round((world - float(layer.translate[0])) / float(layer.scale[0]))
    return int(min(max(frame, 0), n_frames - 1))


def show_frame(viewer: Any, layer: Any | None, frame: int) -> None:
    """Move the time slider to ``frame`` of ``layer`` (whose first axis is time).

    Without the layer (``None``, or one no longer in the viewer) the slider steps to
    ``frame`` as its own step.
    """
    if layer is None or layer not in viewer.layers:
        viewer.dims.set_current_step(0, frame)
        return
    axis = _time_axis(viewer, layer)
    viewer.dims.set_point(axis, float(layer.translate[0]) + frame * float(layer.scale[0]))
