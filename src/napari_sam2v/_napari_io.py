"""napari reader for napari-sam2v result stores (``*.zarr`` folders).

Returns the source frames (when the store holds a copy or the referenced file still
opens), the labels backed by the store's **writable** zarr array (napari's paint and
erase tools write straight to disk), and the prompts as Points (clicks) and Shapes
(boxes) layers. Any other path gets ``None`` so napari tries other readers.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from napari_sam2v.errors import Sam2vError
from napari_sam2v.types import udunits_name

__all__ = [
    "STORE_KEY",
    "UNPROMPTED_LABEL_COLOR",
    "VIDEO_SUFFIXES",
    "channel_colormaps",
    "channel_layers",
    "get_result_reader",
    "get_video_reader",
    "label_colors",
    "layer_axes",
    "read_result",
    "read_video",
    "video_layer",
]

#: Camera video containers that napari cannot read by itself; the plugin reads them
#: lazily (PyAV). Microscopy formats are left to napari's own readers.
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".m4v")

LayerData = tuple[Any, dict[str, Any], str]

#: Layer-metadata key naming the result store a layer shows (its labels, frames or
#: prompts): the Results dock measures it and rescales it with a new calibration.
STORE_KEY = "sam2v_result"


def layer_axes(calibration: Any) -> tuple[tuple[float, ...], tuple[str, ...]]:
    """The ``(t, y, x)`` scale and napari units that show a store's calibration.

    The image axes take the pixel size, so layers overlay other calibrated images.
    The time axis stays in frames (scale 1), as in every layer without a frame
    interval, which most layers a user opens are: napari steps its time slider by the
    finest time step of all layers, so one layer in minutes beside one in frames would
    put the slider, and every "this frame" action, off the frame shown. The frame
    interval is in the layer's ``metadata["calibration"]``, the tables and the store.

    Parameters
    ----------
    calibration : Calibration
        The store's calibration; an uncalibrated image axis stays in pixels.

    Returns
    -------
    scale, units : tuple
        Three scale factors and three unit names (``"pixel"`` for time, and for
        uncalibrated image axes).
    """
    cal = calibration
    scale = (1.0, cal.spatial_scale, cal.spatial_scale)
    units = ("pixel", *(2 * [_udunit(cal.unit) if cal.pixel_size is not None else "pixel"]))
    return scale, units


#: Colour of label values that are no object (painted by hand with a new label in
#: napari): visible, and unlike any object colour of the default palette.
UNPROMPTED_LABEL_COLOR = "#e0e0e0"


def label_colors(objects: dict[int, str]) -> dict[int | None, str]:
    """A napari ``DirectLabelColormap`` colour dict: the objects' colours on transparent.

    Label values that are no object (a new label painted by hand) are drawn in
    :data:`UNPROMPTED_LABEL_COLOR`, so a user's paint never becomes invisible.
    """
    colors: dict[int | None, str] = {None: UNPROMPTED_LABEL_COLOR, 0: "transparent"}
    colors.update(objects.items())
    return colors


#: napari's colours for the layers of one multi-channel image (its ``channel_axis`` defaults).
_TWO_CHANNELS = ("magenta", "green")
_MORE_CHANNELS = ("cyan", "magenta", "yellow", "blue", "green", "red")


def channel_colormaps(n_channels: int) -> list[str]:
    """Colormaps for the ``n_channels`` layers of one image, as napari picks them."""
    if n_channels == 1:
        return ["gray"]
    if n_channels == 2:
        return list(_TWO_CHANNELS)
    return list(itertools.islice(itertools.cycle(_MORE_CHANNELS), n_channels))


def channel_layers(name: str, n_channels: int, metadata: dict[str, Any]) -> dict[str, list[Any]]:
    """Names, metadata and colormaps of the ``(t, y, x)`` layers of one image's channels.

    ``name (channel c)``, ``metadata`` with ``channel`` set to ``c``, and napari's
    channel colours: as ``add_image`` takes them with ``channel_axis``.
    """
    return {
        "name": [f"{name} (channel {c})" for c in range(n_channels)],
        "metadata": [{**metadata, "channel": c} for c in range(n_channels)],
        "colormap": channel_colormaps(n_channels),
    }


def video_layer(
    path: str | Path,
    source: Any,
    calibration: Any,
    *,
    name: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> LayerData:
    """The Image layer data of a video file opened with :func:`~napari_sam2v.io.open_video`.

    The frames stay lazy (dask). The layer is scaled by ``calibration`` and carries it
    in its metadata, with the file's path for a camera video, so the tracker records
    both in the result store (it references such a video instead of copying it).
    Multi-channel (non-RGB) frames become one ``(t, y, x)`` layer per channel
    (napari's ``channel_axis``), each with ``metadata["channel"]``: napari lines
    layers up by their last axes, so only then do they line up with the
    ``(t, y, x)`` result. ``name`` and ``metadata`` replace the defaults (the file's
    stem; its calibration and, for a camera video, its path).
    """
    scale, units = layer_axes(calibration)
    rgb = source.ndim == 4 and source.shape[-1] in (3, 4)
    if metadata is None:
        metadata = {"calibration": calibration.to_dict()}
        if source.metadata.kind == "video":  # referenced by the store, never copied
            metadata["video_path"] = str(path)
    name = name or Path(path).stem
    kwargs: dict[str, Any] = {"scale": list(scale), "units": list(units)}
    if source.ndim == 4 and not rgb:  # (t, y, x, c): one layer per channel
        kwargs.update(channel_axis=3, **channel_layers(name, int(source.shape[-1]), metadata))
    else:
        kwargs.update(name=name, rgb=rgb, metadata=metadata)
    return source.to_dask(), kwargs, "image"


def _one_path(path: str | list[str]) -> str | None:
    """The single path napari hands a reader (``None`` for several at once)."""
    if isinstance(path, (list, tuple)):
        return str(path[0]) if len(path) == 1 else None
    return str(path)


def get_video_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """napari reader hook: a reader for camera video files (:data:`VIDEO_SUFFIXES`)."""
    one = _one_path(path)
    if one is None or Path(one).suffix.lower() not in VIDEO_SUFFIXES or not Path(one).is_file():
        return None
    return read_video


def read_video(path: str | list[str]) -> list[LayerData]:
    """Layer data for a camera video: its frames, read lazily, with its frame rate."""
    from napari_sam2v.io import open_video

    one = _one_path(path) or str(path[0])
    source = open_video(one)
    return [video_layer(one, source, source.metadata.calibration)]


def _is_result_store(path: Path) -> bool:
    return path.is_dir() and (path / "sam2v" / "prompts.json").is_file()


def get_result_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """napari reader hook: a reader function for result stores, else ``None``."""
    one = _one_path(path)
    if one is None or not _is_result_store(Path(one)):
        return None
    return read_result


def read_result(path: str | list[str]) -> list[LayerData]:
    """Layer data for a result store: image (if reopenable), labels, prompts."""
    from napari_sam2v.store import open_result

    result = open_result(_one_path(path) or str(path[0]))
    scale, units = layer_axes(result.calibration)
    owner = {STORE_KEY: str(result.path)}
    layers: list[LayerData] = []
    try:
        source = result.open_image()
    except Sam2vError:
        source = None
    if source is None and result.video_path:
        warnings.warn(
            f"{result.path.name}: its video {result.video_path} is missing or has changed, "
            "so only the labels and prompts are opened; open the video too (same size) to "
            "see them over it",
            UserWarning,
            stacklevel=2,
        )
    if source is not None:  # scaled as any video, channels of microscopy included
        # keep the calibration (time is in frames on the layer); the video is the store's
        meta: dict[str, Any] = {"calibration": result.calibration.to_dict(), **owner}
        if result.video_path:
            meta["video_path"] = str(result.video_path)
        layers.append(
            video_layer(
                result.path,
                source,
                result.calibration,
                name=f"{result.path.stem} video",
                metadata=meta,
            )
        )
    colors = label_colors({o.id: o.color for o in result.objects})
    layers.append(
        (
            result.labels_array(writable=True),
            {
                "name": f"{result.path.stem} objects",
                "scale": scale,
                "units": units,
                "colormap": colors,
                "metadata": {
                    **owner,
                    "objects": {o.id: o.name for o in result.objects},
                },
            },
            "labels",
        )
    )
    layers.extend(_prompt_layers(result, scale, units))
    return layers


def _udunit(unit: str) -> str:
    return udunits_name(unit) or "pixel"


def _prompt_layers(
    result: Any, scale: tuple[float, ...], units: tuple[str, ...]
) -> list[LayerData]:
    prompts = result.prompts
    names = {o.id: o.name for o in result.objects}
    points, obj_ids, labels, boxes, box_ids = [], [], [], [], []
    for p in prompts:
        if p.points is not None:
            for (x, y), lab in zip(p.points.tolist(), p.labels.tolist(), strict=True):
                points.append([p.frame, y, x])
                obj_ids.append(p.object_id)
                labels.append(int(lab))
        if p.box is not None:
            x0, y0, x1, y1 = p.box.tolist()
            boxes.append(
                np.array(
                    [[p.frame, y0, x0], [p.frame, y0, x1], [p.frame, y1, x1], [p.frame, y1, x0]]
                )
            )
            box_ids.append(p.object_id)
    layers: list[LayerData] = []
    if points:
        layers.append(
            (
                np.asarray(points, dtype=float),
                {
                    "name": f"{result.path.stem} prompts",
                    "scale": scale,
                    "units": units,
                    "features": {
                        "object_id": obj_ids,
                        "label": labels,
                        "object": [names.get(i, "") for i in obj_ids],
                    },
                    "face_color": ["#00ff00" if lab else "#ff0000" for lab in labels],
                    "size": 8,
                    "metadata": {STORE_KEY: str(result.path)},
                },
                "points",
            )
        )
    if boxes:
        layers.append(
            (
                boxes,
                {
                    "name": f"{result.path.stem} box prompts",
                    "scale": scale,
                    "units": units,
                    "shape_type": "rectangle",
                    "edge_color": "#ffff00",
                    "face_color": "transparent",
                    "features": {"object_id": box_ids},
                    "metadata": {STORE_KEY: str(result.path)},
                },
                "shapes",
            )
        )
    return layers
