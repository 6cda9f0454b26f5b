"""TIFF internals of the microscopy readers: lazy opening, calibration, truncation.

:func:`open_tiff_array` opens a TIFF's first series as a lazy zarr array and refuses
a file shorter than its header says (a copy or an acquisition that stopped early):
for an ImageJ hyperstack tifffile would otherwise quietly fall back to a one-page
series, so the file looked like a single image; a contiguous stack would only fail
when its first missing frame is read. A plain multi-page TIFF promises no count: its
chain of pages (IFDs) is walked, and a chain or a page's data that runs past the end
of the file (:func:`pages_truncation`) is refused too, where tifffile would quietly
read fewer pages, fail on the last one, or fall back to one page.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from napari_sam2v.errors import VideoReadError
from napari_sam2v.io.source import VideoMetadata, pixel_fields
from napari_sam2v.types import canonical_unit

__all__ = [
    "IfdChain",
    "imagej_truncation",
    "open_tiff_array",
    "pages_truncation",
    "series_truncation",
    "tiff_metadata",
]


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


def imagej_truncation(tif: Any, path: Path, chain: IfdChain) -> str | None:
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
    chain : IfdChain
        The file's pages (:class:`IfdChain`).

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
        complete = chain.complete_pages
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


class IfdChain:
    """The chain of image file directories (IFDs, one per page) of an open TIFF file.

    The chain is walked (:func:`_walk_ifds`) the first time one of its attributes is
    read, and its complete pages counted the first time they are asked for: the
    contiguous ImageJ and tifffile stacks most microscopes write are checked from
    their first page alone and never need either.

    Parameters
    ----------
    tif : tifffile.TiffFile
        The open file; it must stay open while the chain is read.

    Attributes
    ----------
    pages : int
        Number of IFDs that lie whole inside the file, in chain order.
    cut : bool
        Whether the chain runs past the end of the file: the offset of the next IFD
        lies beyond it, or the file ends inside an IFD.
    lost_tag : tuple of int, optional
        ``(page, tag)``: the first public tag (code below 32768) whose values, stored
        apart from its IFD, run past the end of the file (an OME-XML description is
        written last, for one).
    """

    def __init__(self, tif: Any) -> None:
        self._tif = tif

    @functools.cached_property
    def _walked(self) -> tuple[int, bool, tuple[int, int] | None]:
        return _walk_ifds(self._tif)

    @property
    def pages(self) -> int:
        return self._walked[0]

    @property
    def cut(self) -> bool:
        return self._walked[1]

    @property
    def lost_tag(self) -> tuple[int, int] | None:
        return self._walked[2]

    @functools.cached_property
    def complete_pages(self) -> int:
        """How many of the :attr:`pages` have all their image data in the file.

        Counted once per chain (it reads every page's data offsets), however many of
        the truncation checks ask.
        """
        return _complete_pages(self._tif, self.pages)


# Bytes per value of the TIFF tag types (BYTE, ASCII, SHORT, LONG, RATIONAL, ...).
_TYPE_BYTES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
_TYPE_BYTES.update({13: 4, 16: 8, 17: 8, 18: 8})
# Tags from here on are private (vendors'); a bad one does not make a file truncated.
_PRIVATE_TAGS = 32768


def _lost_tag(entries: bytes, fmt: Any, size: int) -> int | None:
    """The first public tag of an IFD whose values, stored apart, run past ``size``."""
    for code, kind, count, value in struct.iter_unpack(fmt.tagheaderformat, entries):
        nbytes = int(count) * _TYPE_BYTES.get(kind, 0)
        if code >= _PRIVATE_TAGS or nbytes <= fmt.tagoffsetthreshold:
            continue
        (offset,) = struct.unpack(fmt.offsetformat, value)
        if int(offset) + nbytes > size:
            return int(code)
    return None


def _walk_ifds(tif: Any) -> tuple[int, bool, tuple[int, int] | None]:
    """Walk a TIFF's chain of IFDs from its first page, reading only the IFDs.

    tifffile stops quietly (it logs an error) where the chain leaves the file, and
    fails on an IFD cut in the middle or drops a tag whose values were cut off (an
    OME-XML description written last); this walk tells them apart from a complete
    chain. A circular chain ends the walk where it loops (not a truncation).

    Parameters
    ----------
    tif : tifffile.TiffFile
        The open file (its file position is restored).

    Returns
    -------
    pages, cut, lost_tag
        As the attributes of :class:`IfdChain`.
    """
    fh, fmt = tif.filehandle, tif.tiff
    size = int(fh.size)
    try:
        offset = int(tif.pages.first.offset)
    except IndexError:
        return 0, False, None
    seen: set[int] = set()
    count = 0
    lost: tuple[int, int] | None = None
    position = fh.tell()
    try:
        while offset and offset not in seen:
            seen.add(offset)
            if offset + fmt.tagnosize > size:
                return count, True, lost
            fh.seek(offset)
            (tags,) = struct.unpack(fmt.tagnoformat, fh.read(fmt.tagnosize))
            block = fh.read(int(tags) * fmt.tagsize + fmt.offsetsize)
            if len(block) < int(tags) * fmt.tagsize + fmt.offsetsize:
                return count, True, lost
            tag = _lost_tag(block[: -fmt.offsetsize], fmt, size) if lost is None else None
            lost = (count, tag) if tag is not None else lost
            count += 1
            (offset,) = struct.unpack(fmt.offsetformat, block[-fmt.offsetsize :])
            offset = int(offset)
    finally:
        fh.seek(position)
    return count, False, lost


def _complete_pages(tif: Any, pages: int) -> int:
    """How many of the first ``pages`` pages have all their image data in the file."""
    import tifffile

    size = int(tif.filehandle.size)
    useframes = tif.pages.useframes
    tif.pages.useframes = True  # offsets only: much faster than whole pages
    try:
        for index in range(pages):
            try:
                page = tif.pages[index]
                spans = zip(page.dataoffsets, page.databytecounts, strict=False)
                if any(int(offset) + int(n) > size for offset, n in spans):
                    return index
            except (tifffile.TiffFileError, struct.error, OSError, ValueError, IndexError):
                return index  # its tags point past the end of the file
    finally:
        tif.pages.useframes = useframes
    return pages


def pages_truncation(tif: Any, path: Path, chain: IfdChain) -> str | None:
    """Why a TIFF's pages run past the end of the file, or ``None`` if they do not.

    A plain multi-page TIFF (no ImageJ or tifffile shape in its description) says
    nothing of how many pages it should have, so a copy cut short is told by its
    chain of pages (:class:`IfdChain`) leaving the file, or by a page whose image
    data does. Uncompressed ImageJ and tifffile stacks read every image from the
    first page's data offset: :func:`imagej_truncation` and
    :func:`series_truncation` check their data, and IFDs missing after it lose
    nothing. The parameters and the result are as for :func:`imagej_truncation`.
    """
    if (tif.is_shaped or tif.is_imagej) and tif.pages.first.is_contiguous:
        return None
    complete = chain.complete_pages
    if complete < chain.pages or chain.cut:
        return _pages_cut(path, complete)
    if chain.lost_tag is not None:
        page, tag = chain.lost_tag
        return (
            f"{path} is truncated: the file ends inside the values of TIFF tag {tag} of its "
            f"page {page + 1} (its metadata, e.g. an OME-XML description written last), "
            "which tifffile would skip, losing the axes or the calibration; the copy stopped "
            "early. Copy the file again from its source"
        )
    return None


def _pages_cut(path: Path, complete: int) -> str:
    plural = "s" if complete != 1 else ""
    return (
        f"{path} is truncated: the file ends inside its page {complete + 1}, after only "
        f"{complete} complete page{plural} (image{plural}); the copy or the acquisition "
        "stopped early. Copy the file again from its source, or save its complete pages as "
        "a new TIFF (see 'Truncated TIFF files' in docs/formats.md)"
    )


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

    errors = (tifffile.TiffFileError, OSError, ValueError, IndexError, KeyError, struct.error)
    with _held_tifffile_log() as held:
        try:
            tif = tifffile.TiffFile(path)
        except errors as exc:
            raise VideoReadError(f"{path}: not a readable TIFF file ({exc})") from exc
        store = None
        try:
            chain = IfdChain(tif)
            truncated = imagej_truncation(tif, path, chain) or pages_truncation(tif, path, chain)
            if truncated:
                held.records.clear()  # tifffile's "corrupted file" lines say less
                raise VideoReadError(truncated)
            series = tif.series[0]
            truncated = series_truncation(tif, series, path)
            if not truncated and getattr(series, "dataoffset", None) is None and chain.cut:
                truncated = _pages_cut(path, chain.complete_pages)
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
