"""On-disk layout of a result store: names, NGFF metadata, chunking and small files.

::

    result.zarr/
      .zattrs | zarr.json     root: "napari_sam2v" provenance (+ "multiscales" when the
                              image is copied in)
      0/                      the copied image (t, [c,] y, x), only when copied
      labels/objects/0/       the label image (t, y, x), one chunk per frame
      sam2v/                  private, plain files (not zarr arrays)
        state.json            run status, replaced atomically
        progress.jsonl        one checksummed line per finished frame (append-only)
        prompts.json          the prompts (JSON v1)
        lock.json             writer lock (pid, host)
        masks/                optional per-object masks (t, object, y, x), bool
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from napari_sam2v._files import atomic_write_json
from napari_sam2v.types import Calibration, udunits_name

__all__ = [
    "FORMAT_VERSION",
    "LABELS_NAME",
    "META_KEY",
    "NGFF_VERSIONS",
    "atomic_write_json",
    "chunk_shape",
    "ngff_axes",
    "ngff_format",
    "ngff_scale",
]

#: Version of the napari-sam2v store layout; stores with a larger one are refused.
FORMAT_VERSION = 1
#: Root attribute holding napari-sam2v's provenance.
META_KEY = "napari_sam2v"
#: Name of the label image under ``labels/``.
LABELS_NAME = "objects"
#: Private folder for run state, progress log, prompts and lock.
PRIVATE = "sam2v"
#: Supported OME-NGFF versions (``"0.4"`` is written as zarr v2, ``"0.5"`` as zarr v3).
NGFF_VERSIONS = ("0.4", "0.5")
#: Frames larger than this (pixels per side) are tiled.
TILE_THRESHOLD = 2048
TILE = 1024


def ngff_format(version: str) -> Any:
    """The ome-zarr-py ``Format`` object of an NGFF version string."""
    from ome_zarr.format import FormatV04, FormatV05

    return {"0.4": FormatV04, "0.5": FormatV05}[version]()


def zarr_format(version: str) -> Literal[2, 3]:
    """Zarr format used for an NGFF version (2 for 0.4, 3 for 0.5)."""
    return 2 if version == "0.4" else 3


def ngff_axes(calibration: Calibration, *, channel: bool = False) -> list[dict[str, str]]:
    """NGFF axes ``t, [c,] y, x`` with UDUNITS names where the calibration has units."""
    time: dict[str, str] = {"name": "t", "type": "time"}
    unit = udunits_name(calibration.time_unit)
    if calibration.frame_interval is not None and unit:
        time["unit"] = unit
    axes = [time]
    if channel:
        axes.append({"name": "c", "type": "channel"})
    for name in ("y", "x"):
        axis = {"name": name, "type": "space"}
        length = udunits_name(calibration.unit)
        if calibration.pixel_size is not None and length:
            axis["unit"] = length
        axes.append(axis)
    return axes


def ngff_scale(calibration: Calibration, *, channel: bool = False) -> list[float]:
    """Scale of the level-0 dataset in the order of :func:`ngff_axes`."""
    space = calibration.spatial_scale
    return [calibration.time_scale, *([1.0] if channel else []), space, space]


def chunk_shape(frame_shape: tuple[int, ...]) -> tuple[int, ...]:
    """One chunk per frame; frames over 2048 px on a side are tiled 1024 x 1024."""
    height, width = frame_shape[-2], frame_shape[-1]
    lead = tuple(frame_shape[:-2])
    if max(height, width) > TILE_THRESHOLD:
        return (1, *lead, min(height, TILE), min(width, TILE))
    return (1, *lead, height, width)


def compressors(zarr_fmt: int) -> Any:
    """Zstd-in-Blosc with bit shuffling: fast, and label images shrink 50-500x."""
    if zarr_fmt == 2:
        from numcodecs import Blosc

        return Blosc(cname="zstd", clevel=3, shuffle=Blosc.BITSHUFFLE)
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")


def array_kwargs(zarr_fmt: int) -> dict[str, Any]:
    """Keyword arguments of ``create_array`` for the chosen zarr format."""
    kwargs: dict[str, Any] = {"compressors": compressors(zarr_fmt), "fill_value": 0}
    if zarr_fmt == 2:
        kwargs["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
    return kwargs


def dimension_names(zarr_fmt: int, names: list[str]) -> dict[str, Any]:
    """``create_array`` keywords naming the axes: zarr v3 arrays must (NGFF 0.5)."""
    return {"dimension_names": names} if zarr_fmt == 3 else {}


def ome_versioned(attrs: dict[str, Any], version: str) -> dict[str, Any]:
    """Group attributes whose ``ome`` entry (NGFF 0.5) carries its ``version``."""
    ome = attrs.get("ome")
    if not isinstance(ome, dict) or "version" in ome:
        return attrs
    return {**attrs, "ome": {"version": version, **ome}}


def frame_chunk_dir(array_dir: Path, frame: int, zarr_fmt: int) -> Path:
    """Folder holding every chunk of one frame (the ``/``-separated chunk keys)."""
    return array_dir / str(frame) if zarr_fmt == 2 else array_dir / "c" / str(frame)


def read_json(path: Path) -> Any:
    """Read a JSON file (``None`` when missing or unreadable)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
