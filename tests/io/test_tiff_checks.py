"""TIFF sources: truncated files are refused when opened, and file handles are closed."""

from __future__ import annotations

import gc
import logging
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_sam2v.errors import InputError, VideoReadError
from napari_sam2v.io import open_video
from napari_sam2v.io.microscopy import TiffSource


def _cut(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    cut = path.with_name(f"cut_{path.name}")
    cut.write_bytes(data[: int(len(data) * fraction)])
    return cut


@pytest.fixture
def tyx(tmp_path: Path) -> Path:
    """An uncompressed 200-frame ImageJ hyperstack (contiguous planes)."""
    frames = np.zeros((200, 32, 32), np.uint8)
    frames[:, 10:20, 10:20] = 200
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, frames, imagej=True, metadata={"axes": "TYX"})
    return path


def test_truncated_imagej_hyperstack_names_the_missing_frames(tyx: Path) -> None:
    """Without the check tifffile falls back to one page: 'only 1 frame'."""
    cut = _cut(tyx, 0.6)
    with pytest.raises(VideoReadError) as info:
        open_video(cut)
    message = str(info.value)
    offset = tifffile.TiffFile(tyx).pages.first.dataoffsets[0]
    complete = (cut.stat().st_size - offset) // (32 * 32)
    short = offset + 200 * 32 * 32 - cut.stat().st_size
    assert message.startswith(f"{cut} is truncated: its ImageJ header promises 200 frames")
    assert f"holds only ~{complete} complete frames ({short} bytes short)" in message
    assert "stopped early" in message and "only 1 frame" not in message
    assert isinstance(info.value, InputError)


def test_truncated_imagej_hyperstack_with_channels_counts_frames(tmp_path: Path) -> None:
    stack = np.random.default_rng(0).integers(0, 255, (40, 2, 24, 24), dtype=np.uint8)
    path = tmp_path / "two.tif"
    tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "TCYX"})
    cut = _cut(path, 0.5)
    offset = tifffile.TiffFile(path).pages.first.dataoffsets[0]
    frames = (cut.stat().st_size - offset) // (24 * 24) // 2
    with pytest.raises(VideoReadError, match=rf"promises 40 frames .* only ~{frames} complete"):
        open_video(cut)


def test_truncated_compressed_imagej_file_is_refused(tmp_path: Path) -> None:
    """One page per plane: the missing pages (and a half-written last one) are counted."""
    stack = np.random.default_rng(1).integers(0, 255, (40, 2, 24, 24), dtype=np.uint8)
    path = tmp_path / "zipped.tif"
    tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "TCYX"}, compression="zlib")
    cut = _cut(path, 0.6)
    with pytest.raises(VideoReadError, match=r"zipped.tif is truncated: .*promises 40 frames"):
        open_video(cut)
    assert open_video(path).shape == (40, 24, 24, 2)  # the whole file is fine


def test_truncated_plain_tifffile_stack_is_refused_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.ones((30, 16, 16), np.uint16))
    cut = _cut(path, 0.5)
    with pytest.raises(VideoReadError, match=r"promises 30 images but the file holds only ~1\d "):
        open_video(cut)


def test_truncation_message_replaces_tifffile_log_lines(tyx: Path, caplog) -> None:
    cut = _cut(tyx, 0.6)
    with caplog.at_level(logging.DEBUG, logger="tifffile"), pytest.raises(VideoReadError):
        open_video(cut)
    assert not [r for r in caplog.records if r.name == "tifffile"]


def test_complete_files_open_and_their_tifffile_logs_are_kept(tyx: Path, caplog) -> None:
    assert open_video(tyx).shape == (200, 32, 32)
    with caplog.at_level(logging.WARNING, logger="tifffile"):
        tifffile.logger().warning("a message of tifffile's own")
        assert open_video(tyx).n_frames == 200
    assert [r.getMessage() for r in caplog.records] == ["a message of tifffile's own"]


def _resource_warnings(action) -> list[str]:
    """ResourceWarnings raised by ``action()`` and the garbage collection after it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        action()
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


def test_close_closes_the_file_and_is_idempotent(tyx: Path) -> None:
    kept: list[TiffSource] = []

    def use_and_close() -> None:
        source = TiffSource(tyx)
        assert source[3].max() == 200
        source.close()
        source.close()
        kept.append(source)  # still referenced: only close() can have closed the file

    assert _resource_warnings(use_and_close) == []
    source = kept.pop()
    assert source[5].max() == 200  # a read after close reopens the file
    assert _resource_warnings(lambda: (source.close(), source.close())) == []


def test_context_manager_closes_the_file(tyx: Path) -> None:
    kept = []

    def use() -> None:
        with open_video(tyx) as video:
            video[1]
        kept.append(video)

    assert _resource_warnings(use) == []
    assert kept[0]._tif is None


def test_a_dropped_source_closes_its_file(tyx: Path) -> None:
    def drop() -> None:
        source = open_video(tyx)
        source[0]
        del source

    assert _resource_warnings(drop) == []


@pytest.mark.parametrize("kind", ["truncated", "four_q_axes", "one_frame"])
def test_refused_files_are_closed(tmp_path: Path, tyx: Path, kind: str) -> None:
    if kind == "truncated":
        path = _cut(tyx, 0.6)
    elif kind == "four_q_axes":
        path = tmp_path / "q.tif"
        tifffile.imwrite(path, np.zeros((2, 3, 8, 8), np.uint8), photometric="minisblack")
    else:
        path = tmp_path / "one.tif"
        tifffile.imwrite(path, np.zeros((8, 8), np.uint8))
    kept: list[BaseException] = []

    def refuse() -> None:
        with pytest.raises(VideoReadError) as info:
            open_video(path)
        kept.append(info.value)  # the traceback keeps the source's frames alive

    assert _resource_warnings(refuse) == []


def test_pickled_source_reopens_the_file(tyx: Path) -> None:
    source = open_video(tyx)
    copy = pickle.loads(pickle.dumps(source))
    source.close()
    np.testing.assert_array_equal(copy[7], tifffile.imread(tyx, key=7))
    copy.close()
