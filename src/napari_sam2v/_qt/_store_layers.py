"""The napari layers that show one result store, found by their tag and rescaled together.

Every layer made from a store (its frames, labels, prompt points and boxes, tracks) carries
the store's path under :data:`~napari_sam2v._napari_io.STORE_KEY` in its metadata: the
plugin's reader, the tracker dock and the Results dock all set it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from napari.layers import Image, Tracks

from napari_sam2v._napari_io import STORE_KEY, layer_axes
from napari_sam2v.errors import StoreExistsError

__all__ = [
    "create_session_store",
    "drop_reader_layers",
    "refill_tracks",
    "rescale_store_layers",
    "store_layers",
    "store_of",
]


def store_of(layer: Any) -> str | None:
    """The result store path behind a layer (its labels, frames or prompts), if any."""
    meta = getattr(layer, "metadata", {}) or {}
    path = meta.get(STORE_KEY)
    return str(path) if path else None


def store_layers(viewer: Any, path: str) -> list[Any]:
    """The viewer's layers tagged with the result store at ``path``, in layer order."""
    target = Path(path).resolve()
    return [
        layer
        for layer in viewer.layers
        if (owner := store_of(layer)) is not None and Path(owner).resolve() == target
    ]


def rescale_store_layers(viewer: Any, path: str, calibration: Any) -> list[str]:
    """Show the layers of one result store in a new calibration.

    Every layer tagged with the store (labels, frames, prompts, tracks) gets the
    calibration's scale and units on its time and image axes; its data (pixels,
    prompt coordinates) is not touched, so the layers stay aligned with each other.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer.
    path : str
        The result store.
    calibration : Calibration
        Its new calibration.

    Returns
    -------
    list of str
        Names of the layers changed.
    """
    scale, units = layer_axes(calibration)
    changed = []
    for layer in store_layers(viewer, path):
        new_scale = [float(v) for v in layer.scale]
        new_units = [str(u) for u in layer.units]
        # time is the first axis, y and x the last two (multi-channel frames are one
        # (t, y, x) layer per channel; a (t, c, y, x) layer keeps its channel unscaled)
        n = len(new_scale)
        for axis, value, unit in zip((0, n - 2, n - 1), scale, units, strict=True):
            new_scale[axis], new_units[axis] = value, unit
        layer.units = new_units
        layer.scale = new_scale
        if isinstance(layer, Image) and "calibration" in layer.metadata:  # from gui flags
            layer.metadata["calibration"] = calibration.to_dict()
        changed.append(layer.name)
    return changed


def refill_tracks(layer: Tracks, data: Any, kwargs: dict[str, Any]) -> None:
    """Give a shown Tracks layer new points, features and scale, keeping its display.

    napari's ``Tracks.data`` setter drops the features, so the layer colours by
    ``track_id`` while they are replaced, then goes back to the user's ``color_by``
    when the new features still have it. Tail length, colormap, opacity and
    visibility are the user's and stay as they are.

    Parameters
    ----------
    layer : napari.layers.Tracks
        The shown layer.
    data : array
        ``(N, 4)`` ``track_id, t, y, x`` points.
    kwargs : dict
        ``features``, ``metadata``, ``scale``, ``translate`` and ``units`` as for
        ``viewer.add_tracks``; the ones given replace the layer's.
    """
    color_by = layer.color_by
    layer.color_by = "track_id"
    layer.data = data
    layer.features = kwargs.get("features", {})
    for key in ("scale", "translate", "units"):
        if key in kwargs:
            setattr(layer, key, kwargs[key])
    layer.metadata = {**layer.metadata, **kwargs.get("metadata", {})}
    if color_by in layer.features.columns:
        layer.color_by = color_by


def drop_reader_layers(viewer: Any, store: str | Path) -> list[str]:
    """Remove the labels and prompt layers that File > Open made of ``store``.

    The tracker dock reopening that store shows its own (and holds its writer lock);
    the reader's would be second, stale copies. Image layers (the frames, which the
    session may use) are kept.

    Returns
    -------
    list of str
        Names of the removed layers.
    """
    removed = [layer for layer in store_layers(viewer, str(store)) if not isinstance(layer, Image)]
    for layer in removed:
        viewer.layers.remove(layer)
    return [layer.name for layer in removed]


def create_session_store(session: Any, path: Path, overwrite: bool) -> Any:
    """Create the session's store; a path that holds a store is explained for the dock."""
    try:
        return session.create_store(path, overwrite=overwrite)
    except StoreExistsError:
        raise StoreExistsError(
            f"{path} already holds a result store: press Reopen store to continue it, "
            "or type another store path to start afresh",
            path=path,
        ) from None
