"""Inputs: lazy video readers (:func:`open_video`) and prompt files (:mod:`.prompt_files`).

Qt-free. ``open_video`` accepts video files (PyAV), TIFF / OME-TIFF stacks, folders
of image frames, zarr / OME-Zarr images, numpy/dask/zarr arrays and napari layers,
and always returns a :class:`VideoSource` with axes ``(t, y, x)`` or ``(t, y, x, c)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from napari_sam2v.errors import InputError, InputFileNotFoundError, VideoReadError
from napari_sam2v.io._axes import check_axes, check_file_axes
from napari_sam2v.io.source import VideoMetadata, VideoSource, pixel_fields
from napari_sam2v.types import LENGTH_UNITS, TIME_UNITS, canonical_unit

__all__ = ["VideoMetadata", "VideoSource", "layer_fields", "open_video"]


def layer_fields(layer: Any) -> dict[str, Any]:
    """:class:`VideoMetadata` calibration fields from a napari layer's ``scale`` and ``units``.

    Time is the first axis and y, x are the last two entries of ``scale`` (an RGB
    layer's colour axis has no scale; a ``(t, c, y, x)`` layer's y and x are last). A
    spatial unit that is not a length (napari's default ``pixel``) leaves the pixel
    size out, and a time unit that is not a time leaves the frame interval out,
    whatever the scale, so a genuine 1 um pixel or 1 min interval is kept. Non-square
    pixels are handled as by every reader (:func:`~napari_sam2v.io.source.pixel_fields`).

    Parameters
    ----------
    layer : napari.layers.Image or duck-typed
        Anything with ``scale`` and ``units`` sequences (and optionally ``name``).

    Returns
    -------
    dict
        ``frame_interval``/``time_unit`` and ``pixel_size``/``unit`` (or ``extra``)
        when known; empty for an uncalibrated layer.
    """
    scale = getattr(layer, "scale", None)
    scale = [] if scale is None else [float(s) for s in np.ravel(scale)]
    units = getattr(layer, "units", None)
    units = [] if units is None else [canonical_unit(str(u)) for u in units]
    fields: dict[str, Any] = {}
    if len(scale) < 3 or len(units) != len(scale):
        return fields
    if units[0] in TIME_UNITS:
        fields.update(frame_interval=scale[0], time_unit=units[0])
    if units[-1] in LENGTH_UNITS and units[-2] in LENGTH_UNITS:
        name = str(getattr(getattr(layer, "source", None), "path", None) or "") or (
            f"layer {getattr(layer, 'name', '')!r}"
        )
        fields.update(pixel_fields(scale[-2], scale[-1], units[-1], name, unit_y=units[-2]))
    return fields


def _from_layer(layer: Any) -> tuple[Any, dict[str, Any], str | None]:
    """A napari Image layer's data, what its metadata says, and its axes.

    The metadata is read by :func:`layer_fields`. An RGB layer is ``(t, y, x, c)``;
    the channel axis of another 4-D layer is inferred from its shape, as for arrays
    (napari's own ``(t, c, y, x)``, or ``(t, y, x, c)`` as the napari reader gives
    multi-channel frames).
    """
    data = layer.data
    if isinstance(data, (list, tuple)):  # multiscale layer: full resolution first
        data = data[0]
    meta: dict[str, Any] = {"kind": "array", "source": getattr(layer, "source", None)}
    meta["source"] = str(getattr(meta["source"], "path", None) or "") or None
    meta.update(layer_fields(layer))
    axes = "TYXC" if len(data.shape) == 4 and getattr(layer, "rgb", False) else None
    return data, meta, axes


def _from_array(
    array: Any, channel: int | None, meta: dict[str, Any], *, axes: str | None = None
) -> VideoSource:
    """An array as a video; without ``axes``, they are inferred from its shape.

    The axes used are kept in ``metadata.extra["array_axes"]``.
    """
    from napari_sam2v.io.microscopy import AxesSource, unnamed_axes

    name = meta.get("source") or "the array"
    fields = {k: v for k, v in meta.items() if v is not None}
    shape = tuple(int(s) for s in array.shape)
    used, metadata = unnamed_axes(shape, axes, fields, name)
    dtype = np.dtype(array.dtype)
    if dtype.kind not in "biuf":
        raise InputError(f"{name}: unsupported pixel dtype {dtype}")
    return AxesSource(array, used, metadata, channel=channel, name=name)


def open_video(
    path_or_array: Any, *, channel: int | None = None, axes: str | None = None
) -> VideoSource:
    """Open a video or time-lapse lazily.

    Parameters
    ----------
    path_or_array : str, Path, array-like or napari layer
        A video file (mp4, mov, avi, mkv, ...), a TIFF / OME-TIFF stack, a folder of
        PNG/JPEG/TIFF frames (natural sort order), a zarr array or OME-Zarr image, an
        array with axes ``(t, y, x)``, ``(t, y, x, c)`` or ``(t, c, y, x)`` (the
        channel axis of a 4-D array, or a ``.npy`` file, is inferred from its
        shape: see ``docs/formats.md``), or a napari Image layer.
        An existing :class:`VideoSource` is returned unchanged (``channel`` must then
        be ``None``).
    channel : int, optional
        Keep only this channel of multi-channel data.
    axes : str, optional
        The axes of data that does not name them, one letter per axis in their
        order (case-insensitive): ``T``, ``Y``, ``X`` once each and ``C`` at most
        once, e.g. ``"TYX"``, ``"TYXC"``, ``"TCYX"``. It replaces the inference for
        ``.npy`` files, plain zarr arrays, arrays and layers (an RGB layer is
        ``"TYXC"``), and names the axes a TIFF without axes metadata leaves unnamed.
        For data that names its axes (ImageJ / OME-TIFF, OME-Zarr, videos, image
        folders) it must agree with them (single-entry axes left out), or an
        ``InputError`` says so. The axes used for data without axis names are in
        ``metadata.extra["array_axes"]``.

    Returns
    -------
    VideoSource
        Lazy frames with axes ``(t, y, x)`` or ``(t, y, x, c)`` and
        :class:`VideoMetadata`.

    Raises
    ------
    InputFileNotFoundError
        If the path does not exist.
    VideoReadError
        If the file is truncated, corrupt, empty, has a single frame, an unsupported
        codec, or a folder mixes frame sizes.
    InputError
        For arrays of the wrong shape/dtype (or a 4-D array whose channel axis
        cannot be told from its shape), an invalid channel, or ``axes`` that are
        invalid or contradict the axes the data names.

    Examples
    --------
    >>> import numpy as np
    >>> video = open_video(np.zeros((5, 32, 32), np.uint8))
    >>> video.shape, video.to_dask().chunksize
    ((5, 32, 32), (1, 32, 32))
    """
    if isinstance(path_or_array, VideoSource):
        if channel is not None or axes is not None:
            raise InputError("channel and axes cannot be changed on an opened VideoSource")
        return path_or_array
    if isinstance(path_or_array, (str, Path)):
        source = _open_path(Path(path_or_array).expanduser(), channel, axes)
    elif hasattr(path_or_array, "data") and hasattr(path_or_array, "scale"):
        data, meta, rgb_axes = _from_layer(path_or_array)
        if axes is not None and rgb_axes is not None:
            name = meta.get("source") or f"layer {getattr(path_or_array, 'name', '')!r}"
            check_file_axes(check_axes(axes, name, shape=data.shape), rgb_axes, name)
        source = _from_array(data, channel, meta, axes=axes or rgb_axes)
    elif hasattr(path_or_array, "shape") and hasattr(path_or_array, "dtype"):
        source = _from_array(path_or_array, channel, {"kind": "array"}, axes=axes)
    else:
        raise InputError(
            f"cannot open {type(path_or_array).__name__!r} as a video: give a path, an "
            "array with axes (t, y, x[, c]) or a napari Image layer"
        )
    if source.n_frames < 2:
        hint = ""
        if "S" in str(source.metadata.extra.get("original_axes", "")):
            # e.g. tifffile.imwrite of a (3, y, x) array: one planar RGB image
            hint = (
                " (the file stores one colour image, its planes are colour samples; if they"
                " are time points, save them as separate pages, e.g. tifffile.imwrite(...,"
                " photometric='minisblack'), or as an ImageJ hyperstack with a T axis)"
            )
        source.close()
        raise VideoReadError(
            f"{source.metadata.source or 'the array'}: the input has only "
            f"{source.n_frames} frame; tracking needs at least 2 frames{hint}"
        )
    return source


def _open_path(path: Path, channel: int | None, axes: str | None) -> VideoSource:
    """Open a file or folder; ``axes`` must agree with the axes of data that names them."""
    given = None if axes is None else check_axes(axes, str(path))
    source = _open_path_as(path, channel, given)
    if given is not None and "array_axes" not in source.metadata.extra:
        try:
            check_file_axes(given, source.stored_axes, str(path))
        except InputError:
            source.close()
            raise
    return source


def _open_path_as(path: Path, channel: int | None, axes: str | None) -> VideoSource:
    from napari_sam2v.io.microscopy import open_folder, open_tiff, open_zarr
    from napari_sam2v.io.video import VIDEO_SUFFIXES, PyAVSource

    if not path.exists():
        raise InputFileNotFoundError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix == ".zarr" or (path.is_dir() and _looks_like_zarr(path)):
        return open_zarr(path, channel=channel, axes=axes)
    if path.is_dir():
        return open_folder(path, channel=channel)
    if path.stat().st_size == 0:
        raise VideoReadError(f"{path}: the file is empty")
    if suffix in (".tif", ".tiff", ".btf", ".tf8"):
        return open_tiff(path, channel=channel, axes=axes)
    if suffix in VIDEO_SUFFIXES:
        return PyAVSource(path, channel=channel)
    if suffix in (".npy",):
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise VideoReadError(f"{path}: not a readable .npy array ({exc})") from exc
        return _from_array(array, channel, {"source": str(path)}, axes=axes)
    raise VideoReadError(
        f"{path}: unsupported file type {suffix or '(no suffix)'!r}; use a video "
        f"({', '.join(VIDEO_SUFFIXES)}), a TIFF stack, a folder of images or a zarr store"
    )


def _looks_like_zarr(path: Path) -> bool:
    return any((path / name).exists() for name in ("zarr.json", ".zgroup", ".zarray"))
