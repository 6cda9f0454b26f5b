"""TIFF internals of the microscopy readers: lazy opening, calibration, truncation.

:func:`open_tiff_array` opens a TIFF's first series as a lazy zarr array and refuses
a file shorter than its header says (a copy or an acquisition that stopped early):
for an ImageJ hyperstack tifffile would otherwise quietly fall back to a one-page
series, so the file looked like a single image; a contiguous stack would only fail
when its first missing frame is read.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from napari_sam2v.errors import VideoReadError
from napari_sam2v.io.source import VideoMetadata, pixel_fields
from napari_sam2v.types import canonical_unit

__all__ = ["imagej_truncation", "open_tiff_array", "series_truncation", "tiff_metadata"]


def _resolution_size(tags: Any, name: str) -> float | None:
    """Pixel size from a TIFF ``XResolution`` / ``YResolution`` tag (pixels per unit)."""
    if name not in tags:
        return None
    num, den = tags[name].value
    return den / num if num and den and num / den > 0 else None


def _ome_size(xml: str, axis: str) -> tuple[float, str] | None:
    """OME-XML ``PhysicalSize<axis>`` and its unit (micrometres when not given)."""
    match = re.search(rf'PhysicalSize{axis}="([0-9.eE+-]+)"', xml)
    if not match:
        return None
    unit_match = re.search(rf'PhysicalSize{axis}Unit="([^"]+)"', xml)
    return float(match.group(1)), canonical_unit(unit_match.group(1) if unit_match else "um")


def tiff_metadata(tif: Any, series: Any, path: Path) -> VideoMetadata:
    """Calibration of a TIFF from its ImageJ, resolution-tag and OME-XML metadata.

    Parameters
    ----------
    tif : tifffile.TiffFile
        The open file.
    series : tifffile.TiffPageSeries
        The series read.
    path : Path
        The file, named in the metadata and in warnings.

    Returns
    -------
    VideoMetadata
    """
    size_x = size_y = frame_interval = None
    unit = unit_y = "px"
    time_unit = "frame"
    ij = tif.imagej_metadata or {}
    if ij:
        if ij.get("finterval"):
            frame_interval = float(ij["finterval"])
            time_unit = canonical_unit(ij.get("tunit") or "s")
        unit = unit_y = canonical_unit(ij.get("unit") or "px")
    page = series.pages[0] if series.pages else tif.pages[0]
    tags = getattr(page, "tags", {})
    size_x = _resolution_size(tags, "XResolution")
    if size_x is not None:
        size_y = _resolution_size(tags, "YResolution")
        res_unit = tags["ResolutionUnit"].value if "ResolutionUnit" in tags else 1
        if not ij and int(res_unit) == 3:  # centimetre
            size_x, unit = size_x * 1e4, "um"
            size_y, unit_y = (size_y * 1e4 if size_y else None), "um"
        elif unit == "px":
            # inch-based resolutions are print DPI (often a default 72), not optics
            size_x = size_y = None
    if tif.is_ome and tif.ome_metadata:
        ome_x = _ome_size(tif.ome_metadata, "X")
        if ome_x:
            size_x, unit = ome_x
            size_y, unit_y = _ome_size(tif.ome_metadata, "Y") or (None, unit)
        match = re.search(r'TimeIncrement="([0-9.eE+-]+)"', tif.ome_metadata)
        if match:
            frame_interval = float(match.group(1))
            unit_match = re.search(r'TimeIncrementUnit="([^"]+)"', tif.ome_metadata)
            time_unit = canonical_unit(unit_match.group(1) if unit_match else "s")
    return VideoMetadata(
        source=str(path),
        kind="tiff",
        fps=1.0 / frame_interval if frame_interval and time_unit == "s" else None,
        frame_interval=frame_interval,
        time_unit=time_unit if frame_interval else "frame",
        **pixel_fields(size_y, size_x, unit, str(path), unit_y=unit_y),
    )


def _header_count(meta: dict[str, Any], key: str) -> int:
    value = meta.get(key, 1)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def imagej_truncation(tif: Any, path: Path) -> str | None:
    """Why an ImageJ TIFF is shorter than its header says, or ``None`` if it is not.

    The header's ``frames`` x ``slices`` x ``channels`` (read as tifffile reads it)
    is the number of image planes the file must hold. Uncompressed hyperstacks
    store them contiguously after the first page: the file must reach the end of
    the last plane. Other ImageJ files have one page per plane: every page must be
    there, with all its data.

    Parameters
    ----------
    tif : tifffile.TiffFile
        The open file.
    path : Path
        The file, named in the message.

    Returns
    -------
    str or None
        The error message for a truncated file.
    """
    meta = tif.imagej_metadata
    if not meta:
        return None
    frames, slices, channels, images = (
        _header_count(meta, key) for key in ("frames", "slices", "channels", "images")
    )
    if min(frames, slices, channels, images) < 1:
        return None  # a corrupt header: tifffile reads the pages as they are
    page = tif.pages.first
    shaped = tuple(getattr(page, "shaped", ()) or (1, 1, 1, 1, 1))
    # the planes tifffile expects (TiffFile._series_imagej): channels may be samples
    if channels == 1 or (shaped[0] > 1 and shaped[0] == channels):
        planes = frames * slices
    elif images == frames * slices and shaped[-1] == channels:
        planes = frames * slices
    else:
        planes = frames * slices * channels
    if planes == 1:
        planes = images
    plane_bytes = int(page.nbytes)
    if planes <= 1 or plane_bytes <= 0 or not page.dataoffsets:
        return None
    size = int(tif.filehandle.size)
    short: int | None = None
    if page.is_final:  # uncompressed: the planes are contiguous after the first page
        needed = int(page.dataoffsets[0]) + planes * plane_bytes
        if needed <= size:
            return None
        complete = max(size - int(page.dataoffsets[0]), 0) // plane_bytes
        short = needed - size
    else:
        pages = list(tif.pages)
        complete = len(pages)
        last = pages[-1] if pages else None
        if last is not None and last.dataoffsets and last.databytecounts:
            if int(last.dataoffsets[-1]) + int(last.databytecounts[-1]) > size:
                complete -= 1
        if complete >= planes:
            return None
    if frames > 1:
        count, word = frames, "frames"
    elif slices > 1:
        count, word = slices, "slices"
    else:
        count, word = planes, "images"
    per_count = max(planes // count, 1)
    return _truncated(path, "ImageJ header", count, complete // per_count, word, short)


def series_truncation(tif: Any, series: Any, path: Path) -> str | None:
    """Why a TIFF's contiguous series ends beyond the end of the file, or ``None``.

    Covers the uncompressed stacks tifffile writes itself (shape in the image
    description), whose truncation tifffile only notices when a frame is read.
    ``tif`` and ``path`` are as for :func:`imagej_truncation`; ``series`` is the
    file's first series. Returns the error message, or ``None``.
    """
    offset = getattr(series, "dataoffset", None)
    page = series.keyframe if getattr(series, "keyframe", None) is not None else None
    if offset is None or page is None or int(page.nbytes) <= 0:
        return None
    size, nbytes, plane = int(tif.filehandle.size), int(series.nbytes), int(page.nbytes)
    if int(offset) + nbytes <= size:
        return None
    complete = max(size - int(offset), 0) // plane
    return _truncated(path, "header", nbytes // plane, complete, "images", offset + nbytes - size)


def _truncated(
    path: Path, header: str, count: int, complete: int, word: str, short: int | None
) -> str:
    missing = f" ({short} bytes short)" if short is not None else ""
    return (
        f"{path} is truncated: its {header} promises {count} {word} but the file holds "
        f"only ~{complete} complete {word}{missing}; the copy or the acquisition stopped "
        "early. Copy the file again from its source, or save its complete frames as a new "
        "TIFF (see 'Truncated TIFF files' in docs/formats.md)"
    )


class _HeldRecords(logging.Filter):
    """Hold back the log records of the current thread (to replay or drop them)."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread != self.thread:
            return True
        self.records.append(record)
        return False


@contextlib.contextmanager
def _held_tifffile_log() -> Iterator[_HeldRecords]:
    """Hold tifffile's log messages while a file is opened.

    A truncated ImageJ file makes tifffile log "ImageJ series metadata invalid or
    corrupted file"; when our own error explains the problem, those lines are dropped.
    Otherwise :func:`open_tiff_array` replays them.
    """
    logger = logging.getLogger("tifffile")
    held = _HeldRecords()
    logger.addFilter(held)
    try:
        yield held
    finally:
        logger.removeFilter(held)


def open_tiff_array(path: Path) -> tuple[Any, Any, Any, Any]:
    """Open a TIFF's first series lazily: ``(TiffFile, series, zarr store, zarr array)``.

    The caller owns the ``TiffFile`` and the store and must close them. On error
    both are closed here.

    Raises
    ------
    VideoReadError
        If the file is not a readable TIFF, or is truncated (see
        :func:`imagej_truncation` and :func:`series_truncation`).
    """
    import tifffile
    import zarr

    errors = (tifffile.TiffFileError, OSError, ValueError, IndexError, KeyError)
    with _held_tifffile_log() as held:
        try:
            tif = tifffile.TiffFile(path)
        except errors as exc:
            raise VideoReadError(f"{path}: not a readable TIFF file ({exc})") from exc
        store = None
        try:
            truncated = imagej_truncation(tif, path)
            if truncated:
                held.records.clear()  # tifffile's "corrupted file" lines say less
                raise VideoReadError(truncated)
            series = tif.series[0]
            truncated = series_truncation(tif, series, path)
            if truncated:
                held.records.clear()
                raise VideoReadError(truncated)
            store = series.aszarr()
            node = zarr.open(store, mode="r")
            array = node["0"] if isinstance(node, zarr.Group) else node
        except BaseException as exc:
            if store is not None:
                store.close()
            tif.close()
            if isinstance(exc, errors) and not isinstance(exc, VideoReadError):
                raise VideoReadError(f"{path}: not a readable TIFF file ({exc})") from exc
            raise
    logger = logging.getLogger("tifffile")
    for record in held.records:
        logger.handle(record)
    return tif, series, store, array
