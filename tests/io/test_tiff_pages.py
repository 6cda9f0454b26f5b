"""Plain multi-page TIFFs cut short are refused when opened, whatever their layout."""

from __future__ import annotations

import logging
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_sam2v.errors import VideoReadError
from napari_sam2v.io import open_video

N_PAGES = 30


@pytest.fixture
def frames() -> np.ndarray:
    return np.random.default_rng(4).integers(0, 255, (N_PAGES, 48, 40)).astype(np.uint8)


def _write(path: Path, frames: np.ndarray, layout: str) -> None:
    """A multi-page TIFF without ImageJ or OME metadata, laid out as its writer does."""
    if layout == "raw":  # tifffile: first IFD, all image data, then the other IFDs
        tifffile.imwrite(path, frames, metadata=None)
    elif layout == "zlib":  # tifffile: each page's IFD, then its compressed data
        tifffile.imwrite(path, frames, metadata=None, compression="zlib")
    elif layout == "shaped_zlib":  # tifffile's own shape in the description
        tifffile.imwrite(path, frames, compression="zlib")
    elif layout == "tiles_bigtiff":
        tifffile.imwrite(path, frames, metadata=None, tile=(32, 32), bigtiff=True)
    else:  # Pillow (libtiff's order): each page's data, then its IFD
        images = [Image.fromarray(f) for f in frames]
        kwargs = {"compression": "tiff_lzw"} if layout == "pillow_lzw" else {}
        images[0].save(path, save_all=True, append_images=images[1:], **kwargs)


LAYOUTS = ["raw", "zlib", "shaped_zlib", "tiles_bigtiff", "pillow", "pillow_lzw"]


def _cuts(path: Path) -> dict[str, int]:
    """File sizes that end inside the last page's data, inside the last IFD, and halfway."""
    with tifffile.TiffFile(path) as tif:
        last = tif.pages[-1]
        data_start = int(last.dataoffsets[0])
        data_end = int(last.dataoffsets[-1]) + int(last.databytecounts[-1])
        ifd = int(last.offset)
    return {
        "last_page_data": (data_start + data_end) // 2,
        "last_ifd": ifd + 6,  # the tag count and part of the first tag
        "half": path.stat().st_size // 2,
    }


def _complete_pages(message: str) -> int:
    match = re.search(r"after only (\d+) complete pages?", message)
    assert match, message
    return int(match.group(1))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("where", ["last_page_data", "last_ifd", "half"])
def test_a_cut_multipage_tiff_is_refused_with_its_complete_pages(
    tmp_path: Path, frames: np.ndarray, layout: str, where: str, caplog: Any
) -> None:
    """Without the check: fewer pages silently, one frame, a raw struct.error, or a
    last frame that fails (or is garbage) only when tracking reaches it."""
    path = tmp_path / f"{layout}.tif"
    _write(path, frames, layout)
    whole = open_video(path)
    assert whole.shape == (N_PAGES, 48, 40)
    np.testing.assert_array_equal(whole[N_PAGES - 1], frames[-1])
    whole.close()
    cut = tmp_path / f"cut_{layout}_{where}.tif"
    cut.write_bytes(path.read_bytes()[: _cuts(path)[where]])
    with caplog.at_level(logging.DEBUG, logger="tifffile"):
        with pytest.raises(VideoReadError) as info:
            open_video(cut)
    message = str(info.value)
    assert message.startswith(f"{cut} is truncated: the file ends inside its page ")
    assert "Truncated TIFF files" in message
    complete = _complete_pages(message)
    assert 1 <= complete < N_PAGES
    if where != "half":
        assert complete == N_PAGES - 1 or layout == "raw"  # raw: its IFDs come last
    # the pages it calls complete are (docs/formats.md: save them as a new TIFF)
    kept = tifffile.imread(cut, key=range(complete)).reshape(complete, 48, 40)
    np.testing.assert_array_equal(kept, frames[:complete])
    assert not [r for r in caplog.records if r.name == "tifffile"]  # our message says it all


def test_an_ome_tiff_cut_in_its_metadata_is_refused(tmp_path: Path, frames: np.ndarray) -> None:
    """tifffile writes the OME-XML last: without it the axes and calibration are lost."""
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(path, frames, ome=True, metadata={"axes": "TYX", "PhysicalSizeX": 0.5})
    cut = tmp_path / "cut.ome.tif"
    cut.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(VideoReadError, match=r"cut.ome.tif is truncated: .* TIFF tag 270 of its"):
        open_video(cut)
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(VideoReadError, match=r"ends inside its page \d+, after only \d+ complete"):
        open_video(cut)


def test_bad_values_of_a_private_tag_do_not_make_a_file_truncated(
    tmp_path: Path, frames: np.ndarray
) -> None:
    """A vendor tag (code 32768 and up) pointing past the end is skipped as tifffile does."""
    path = tmp_path / "vendor.tif"
    tifffile.imwrite(path, frames, metadata=None, extratags=[(65000, "s", 0, "x" * 40, True)])
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages.first.tags[65000]
        where = tag.offset + 8  # the tag's value offset (code, type and count come first)
    struct.pack_into("<I", data, where, len(data) + 1000)
    path.write_bytes(bytes(data))
    video = open_video(path)
    assert video.shape == (N_PAGES, 48, 40)
    np.testing.assert_array_equal(video[N_PAGES - 1], frames[-1])
    video.close()


def test_many_pages_open_quickly(tmp_path: Path) -> None:
    """The walk over the pages reads their IFDs only: 3000 pages well under a second."""
    import time

    path = tmp_path / "many.tif"
    tifffile.imwrite(path, np.zeros((3000, 8, 8), np.uint8), metadata=None, compression="zlib")
    start = time.perf_counter()
    open_video(path).close()
    assert time.perf_counter() - start < 5.0


def test_the_complete_pages_are_counted_once_per_open(
    tmp_path: Path, frames: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compressed ImageJ stack is checked by its header and by its pages: one count."""
    from napari_sam2v.io import _tiff

    path = tmp_path / "imagej_zlib.tif"
    tifffile.imwrite(path, frames, imagej=True, compression="zlib", metadata={"axes": "TYX"})
    counted: list[int] = []
    real = _tiff._complete_pages

    def counting(tif: Any, pages: int) -> int:
        counted.append(pages)
        return real(tif, pages)

    monkeypatch.setattr(_tiff, "_complete_pages", counting)
    with open_video(path) as video:
        assert video.n_frames == N_PAGES
    assert counted == [N_PAGES]


@pytest.mark.parametrize(
    ("layout", "walks"), [("imagej_raw", 0), ("shaped_raw", 0), ("zlib", 1), ("pillow", 1)]
)
def test_the_pages_are_walked_only_where_a_check_needs_them(
    tmp_path: Path, frames: np.ndarray, monkeypatch: pytest.MonkeyPatch, layout: str, walks: int
) -> None:
    """Contiguous ImageJ and tifffile stacks are checked from their first page alone."""
    from napari_sam2v.io import _tiff

    path = tmp_path / f"{layout}.tif"
    if layout == "imagej_raw":
        tifffile.imwrite(path, frames, imagej=True, metadata={"axes": "TYX"})
    elif layout == "shaped_raw":
        tifffile.imwrite(path, frames)
    else:
        _write(path, frames, layout)
    walked: list[int] = []
    real = _tiff._walk_ifds

    def counting(tif: Any) -> Any:
        walked.append(1)
        return real(tif)

    monkeypatch.setattr(_tiff, "_walk_ifds", counting)
    with open_video(path) as video:
        assert video.n_frames == N_PAGES
    assert len(walked) == walks
