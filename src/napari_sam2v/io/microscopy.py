"""Readers for microscopy data: TIFF / OME-TIFF stacks and (OME-)Zarr images.

Image folders are read by :mod:`napari_sam2v.io.folder` (re-exported here).

Every reader returns a :class:`~napari_sam2v.io.source.VideoSource` with axes
``(t, y, x)`` or ``(t, y, x, c)``: other axis orders (``TCYX``, ``CTYX``, ...) are
reordered lazily, singleton axes are dropped, and a stack without a time axis uses
its one non-singleton extra axis (Z, I, Q) as time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from napari_sam2v.errors import InputError, VideoReadError
from napari_sam2v.io._axes import array_axes, fill_unnamed_axes
from napari_sam2v.io._tiff import open_tiff_array
from napari_sam2v.io._tiff import tiff_metadata as _tiff_metadata
from napari_sam2v.io.folder import IMAGE_SUFFIXES, FolderSource, natural_key, open_folder
from napari_sam2v.io.source import VideoMetadata, VideoSource, pixel_fields
from napari_sam2v.types import canonical_unit

__all__ = [
    "AxesSource",
    "FolderSource",
    "TiffSource",
    "IMAGE_SUFFIXES",
    "open_folder",
    "open_tiff",
    "open_zarr",
    "unnamed_axes",
]

_TIME_ALIASES = "TZIQ"
_CHANNEL_ALIASES = "CS"


def unnamed_axes(
    shape: Sequence[int], axes: str | None, fields: dict[str, Any], name: str
) -> tuple[str, VideoMetadata]:
    """The axes of an array without axis names, and its metadata recording them.

    Parameters
    ----------
    shape : sequence of int
        The array's shape.
    axes : str or None
        ``axes=`` as given, or ``None`` to infer them (:func:`~._axes.array_axes`).
    fields : dict
        :class:`VideoMetadata` fields; ``extra["array_axes"]`` is added to them.
    name : str
        The file or array named in error messages.

    Returns
    -------
    axes, metadata : str, VideoMetadata
    """
    used = array_axes(shape, axes, name)
    extra = {**fields.get("extra", {}), "array_axes": used}
    return used, VideoMetadata(**{**fields, "extra": extra})


class AxesSource(VideoSource):
    """Present an N-D array with named axes as ``(t, y, x[, c])`` frames.

    Parameters
    ----------
    array : array-like
        Lazy array (zarr, numpy, ...) with one axis per letter of ``axes``.
    axes : str
        Upper-case axis letters, e.g. ``"TCYX"``.
    metadata : VideoMetadata
        Metadata (``axes`` is overwritten with the output axes).
    channel : int, optional
        Channel to keep from a multi-channel array.
    name : str
        Name used in error messages.
    """

    def __init__(
        self,
        array: Any,
        axes: str,
        metadata: VideoMetadata,
        *,
        channel: int | None = None,
        name: str,
    ) -> None:
        axes = axes.upper()
        shape = tuple(int(s) for s in array.shape)
        if len(axes) != len(shape):
            raise VideoReadError(f"{name}: axes {axes!r} do not match the shape {shape}")
        if "Y" not in axes or "X" not in axes:
            raise VideoReadError(f"{name}: no Y/X axes in {axes!r}")
        time_axis = self._pick(axes, shape, _TIME_ALIASES, "time", name)
        chan_axis = self._pick(axes, shape, _CHANNEL_ALIASES, "channel", name)
        used = {axes.index("Y"), axes.index("X")} | {a for a in (time_axis, chan_axis) if a >= 0}
        extra = [i for i in range(len(axes)) if i not in used and shape[i] > 1]
        if extra:
            raise VideoReadError(
                f"{name}: cannot interpret axes {axes!r} with shape {shape}: axis "
                f"{axes[extra[0]]!r} has {shape[extra[0]]} planes besides time; napari-sam2v "
                "tracks 2-D time-lapses (t, y, x[, c])"
            )
        self._array = array
        self._time_axis = time_axis
        self._chan_axis = chan_axis
        self._yx = (axes.index("Y"), axes.index("X"))
        self._ndim = len(shape)
        stored = {self._yx[0]: "Y", self._yx[1]: "X", time_axis: "T"}
        if chan_axis >= 0 and shape[chan_axis] > 1:
            stored[chan_axis] = "C"
        self._stored_axes = "".join(stored[i] for i in sorted(stored))
        n_frames = shape[time_axis] if time_axis >= 0 else 1
        n_chan = shape[chan_axis] if chan_axis >= 0 else 1
        self._channel: int | None = None
        if channel is not None:
            if not 0 <= int(channel) < n_chan:
                raise InputError(
                    f"{name}: channel {channel} does not exist (the data has {n_chan} "
                    f"channel{'s' if n_chan != 1 else ''})"
                )
            self._channel = int(channel) if n_chan > 1 else None
            n_chan = 1
        out_shape: tuple[int, ...] = (n_frames, shape[self._yx[0]], shape[self._yx[1]])
        if n_chan > 1:
            out_shape = (*out_shape, n_chan)
        extra_meta = dict(metadata.extra, original_axes=axes, original_shape=list(shape))
        meta = VideoMetadata(
            **{
                **metadata.__dict__,
                "axes": "tyxc" if n_chan > 1 else "tyx",
                "extra": extra_meta,
            }
        )
        super().__init__(out_shape, array.dtype, meta)

    @property
    def stored_axes(self) -> str:
        """The axes of the array as stored, single-entry ones left out (e.g. ``"TCYX"``)."""
        return self._stored_axes

    @staticmethod
    def _pick(axes: str, shape: Sequence[int], aliases: str, what: str, name: str) -> int:
        present = [i for i, a in enumerate(axes) if a in aliases]
        if not present:
            return -1
        for letter in aliases:  # preferred letter first (T before Z, C before S)
            if letter in axes and shape[axes.index(letter)] > 1:
                big = [i for i in present if shape[i] > 1]
                if len(big) > 1:
                    letters = "".join(axes[i] for i in big)
                    raise VideoReadError(
                        f"{name}: ambiguous {what} axes {letters!r} in {axes!r} "
                        f"(shape {tuple(shape)}); save the stack with one {what} axis"
                    )
                return axes.index(letter)
        return present[0]

    def _read(self, index: int) -> np.ndarray:
        key: list[Any] = [0] * self._ndim
        for ax in self._yx:
            key[ax] = slice(None)
        if self._time_axis >= 0:
            key[self._time_axis] = index
        keep = sorted([*self._yx] + ([self._chan_axis] if self._chan_axis >= 0 else []))
        if self._chan_axis >= 0:
            key[self._chan_axis] = slice(None) if self._channel is None else self._channel
        data = np.asarray(self._array[tuple(key)])
        kept = [ax for ax in keep if not (ax == self._chan_axis and self._channel is not None)]
        order = [kept.index(self._yx[0]), kept.index(self._yx[1])]
        if self._chan_axis >= 0 and self._channel is None:
            order.append(kept.index(self._chan_axis))
        data = np.transpose(data, order)
        if data.ndim == 3 and data.shape[2] == 1:
            data = data[..., 0]
        return data


class TiffSource(AxesSource):
    """A TIFF / OME-TIFF / ImageJ stack read lazily through tifffile's zarr view.

    The file stays open for reading until :meth:`close` (idempotent; a later read
    reopens it) or until the source is garbage-collected. The file handle is not
    pickled: a copy sent to another process reopens the file. A truncated file (an
    ImageJ hyperstack, or a contiguous stack, shorter than its header says) is
    refused when it is opened (see ``docs/formats.md``).

    Parameters
    ----------
    path : Path
        The file.
    channel : int, optional
        Channel to keep from a multi-channel stack.
    axes : str, optional
        Validated axes (:func:`~napari_sam2v.io._axes.check_axes`) for the axes that
        tifffile leaves unnamed (``Q``, ``I``: a TIFF without axes metadata); ignored
        when the file names all its axes (:func:`open_video` then checks that they
        agree).
    """

    def __init__(self, path: Path, *, channel: int | None = None, axes: str | None = None) -> None:
        self.path = path
        self._tif, series, self._store, array = open_tiff_array(path)
        try:
            named = series.axes
            meta = _tiff_metadata(self._tif, series, path)
            if axes is not None and set(named) & set("QI"):
                named = fill_unnamed_axes(named, axes, series.shape, str(path))
                meta = replace(meta, extra={**meta.extra, "array_axes": axes})
            if len(named) >= 5 and set(named) - set("TCZYXS"):
                raise VideoReadError(
                    f"{path}: {len(named)}-D TIFF without axes metadata (axes {named!r}, shape "
                    f"{series.shape}); save it as an ImageJ or OME-TIFF hyperstack with named axes"
                )
            if len(named) == 4 and named.count("Q") >= 2:
                raise VideoReadError(
                    f"{path}: 4-D TIFF without axes metadata (shape {series.shape}); save it as "
                    "an ImageJ or OME-TIFF hyperstack so the time and channel axes are known, "
                    "or give its axes: open_video(..., axes='TCYX') or 'TYXC'"
                )
            super().__init__(array, named, meta, channel=channel, name=str(path))
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        tif, store = getattr(self, "_tif", None), getattr(self, "_store", None)
        self._tif = self._store = self._array = None
        if store is not None:
            store.close()
        if tif is not None:
            tif.close()

    def close(self) -> None:
        """Close the file (idempotent; the next frame read reopens it)."""
        with self._lock:
            self._release()

    def __del__(self) -> None:
        try:
            self._release()
        except Exception:  # interpreter shutdown: nothing left to close
            return

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.update(_array=None, _tif=None, _store=None)
        return state

    def _read(self, index: int) -> np.ndarray:
        if self._array is None:
            self._tif, _, self._store, self._array = open_tiff_array(self.path)
        try:
            return super()._read(index)
        except (ValueError, OSError, IndexError, KeyError) as exc:
            raise VideoReadError(
                f"{self.path}: frame {index} cannot be read, the file is truncated or "
                f"corrupt ({exc})"
            ) from exc


def open_tiff(path: Path, *, channel: int | None = None, axes: str | None = None) -> VideoSource:
    """Open a TIFF / OME-TIFF / ImageJ hyperstack lazily (see :class:`TiffSource`)."""
    return TiffSource(path, channel=channel, axes=axes)


def _ngff_multiscales(attrs: dict[str, Any]) -> list[dict[str, Any]] | None:
    if "ome" in attrs and isinstance(attrs["ome"], dict):
        attrs = attrs["ome"]
    value = attrs.get("multiscales")
    return value if isinstance(value, list) and value else None


def _child_images(node: Any) -> list[str]:
    """Child groups of ``node`` that are OME-Zarr images, in natural order (bioformats2raw)."""
    import zarr

    names = sorted(node.group_keys(), key=natural_key)
    is_image = [
        isinstance(node[n], zarr.Group) and _ngff_multiscales(dict(node[n].attrs)) for n in names
    ]
    return [name for name, image in zip(names, is_image, strict=True) if image]


def open_zarr(path: Path, *, channel: int | None = None, axes: str | None = None) -> VideoSource:
    """Open a zarr array or an OME-Zarr image (level 0) lazily.

    A bioformats2raw layout (the images at ``x.zarr/0``, ``x.zarr/1``, ... below a
    root without ``multiscales``) opens its first image, ``x.zarr/0``. A plain
    array has no axis names: they are ``axes`` when given, else inferred from its
    shape (:func:`~napari_sam2v.io._axes.plain_axes`), and kept in
    ``metadata.extra["array_axes"]``. ``axes`` is ignored for an OME-Zarr image
    (:func:`open_video` checks that they agree with its own).
    """
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise VideoReadError(f"{path}: not a readable zarr store ({exc})") from exc
    meta_kwargs: dict[str, Any] = {"source": str(path), "kind": "zarr"}
    if isinstance(node, zarr.Array):  # no axis names: given, or inferred from the shape
        used, meta = unnamed_axes(node.shape, axes, meta_kwargs, str(path))
        return AxesSource(node, used, meta, channel=channel, name=str(path))
    multiscales = _ngff_multiscales(dict(node.attrs))
    if multiscales is None:
        images = _child_images(node)
        if images[:1] != ["0"]:
            where = (
                f"; it holds the images {', '.join(images)}: open {path / images[0]}"
                if images
                else "; open the OME-Zarr image (the group with 'multiscales')"
            )
            raise VideoReadError(
                f"{path}: zarr group without OME-Zarr 'multiscales' metadata{where}"
            )
        image = images[0]  # bioformats2raw layout: the first image
        node = node[image]
        multiscales = _ngff_multiscales(dict(node.attrs))
        meta_kwargs["extra"] = {"image_path": image}
    assert multiscales is not None  # _child_images lists only groups with multiscales
    ms = multiscales[0]
    dataset = ms["datasets"][0]
    array = node.get(dataset["path"]) if isinstance(node, zarr.Group) else None
    if not isinstance(array, zarr.Array):
        raise VideoReadError(
            f"{path}: the OME-Zarr dataset {dataset['path']!r} of its first resolution "
            "level is not an array"
        )
    axes_meta = ms.get("axes") or [{"name": n} for n in "tczyx"[-array.ndim :]]
    axes = "".join((a["name"] if isinstance(a, dict) else str(a))[0].upper() for a in axes_meta)
    scale = next(
        (t["scale"] for t in dataset.get("coordinateTransformations", []) if t["type"] == "scale"),
        None,
    )
    sizes: dict[str, tuple[float, str | None]] = {}
    for ax, value, info in zip(axes, scale or [], axes_meta, strict=False):
        unit = info.get("unit") if isinstance(info, dict) else None
        sizes[ax] = (float(value), canonical_unit(unit) if unit else None)
    if sizes.get("T", (0, None))[1]:
        meta_kwargs.update(frame_interval=sizes["T"][0], time_unit=sizes["T"][1])
    size_x, unit = sizes.get("X", (None, None))
    if unit:
        size_y, unit_y = sizes.get("Y", (None, None))
        fields = pixel_fields(size_y, size_x, unit, str(path), unit_y=unit_y or unit)
        extra = {**meta_kwargs.get("extra", {}), **fields.pop("extra", {})}
        meta_kwargs.update(fields, extra=extra)
    return AxesSource(array, axes, VideoMetadata(**meta_kwargs), channel=channel, name=str(path))
