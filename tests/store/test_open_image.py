"""Result.open_image: the store's copy of the frames, or its unchanged input file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_sam2v.errors import InputError
from napari_sam2v.io import open_video
from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.prompts import Prompt
from napari_sam2v.store import ResultStore, open_result
from napari_sam2v.store.result import file_fingerprint
from napari_sam2v.types import ObjectInfo


@pytest.fixture
def prompts() -> Prompts:
    return Prompts([ObjectInfo(1, "cell")], [Prompt(0, 1, points=[[10, 10]])])


def _store(path: Path, prompts: Prompts, frames: np.ndarray, **kwargs) -> Path:
    store = ResultStore.create(
        path, n_frames=frames.shape[0], frame_shape=frames.shape[1:3], prompts=prompts, **kwargs
    )
    store.close()
    return path


@pytest.mark.parametrize("channels", [1, 3, 17, 40])
def test_a_copy_reopens_whatever_its_number_of_channels(
    tmp_path: Path, prompts: Prompts, channels: int
) -> None:
    """17 and 40 channels were refused: the copy was read back with inferred axes."""
    tcyx = np.random.default_rng(channels).integers(0, 999, (3, channels, 24, 20), np.uint16)
    source = open_video(tcyx, axes="TCYX")  # (t, y, x, c) frames, as track copies them
    path = _store(tmp_path / "r.zarr", prompts, np.moveaxis(tcyx, 1, -1), image=source)
    image = open_result(path).open_image()
    expected = (3, 24, 20, channels) if channels > 1 else (3, 24, 20)
    assert image.shape == expected
    np.testing.assert_array_equal(image[2], np.moveaxis(tcyx[2], 0, -1).squeeze())
    one = open_result(path).open_image(channel=channels - 1)
    assert one.shape == (3, 24, 20)
    np.testing.assert_array_equal(one[1], tcyx[1, channels - 1])


def test_an_ambiguous_copy_reopens(tmp_path: Path, prompts: Prompts) -> None:
    """(t, y, x, c) frames of shape (3, 3, 64, 3) copied as (t, c, y, x): not guessed."""
    frames = np.arange(3 * 3 * 64 * 3, dtype=np.uint16).reshape(3, 3, 64, 3)
    path = _store(tmp_path / "a.zarr", prompts, frames, image=open_video(frames, axes="TYXC"))
    image = open_result(path).open_image()
    assert image.shape == (3, 3, 64, 3)
    np.testing.assert_array_equal(image[1], frames[1])


def test_a_grey_copy_reopens(tmp_path: Path, prompts: Prompts) -> None:
    frames = np.arange(2 * 8 * 6, dtype=np.uint8).reshape(2, 8, 6)
    path = _store(tmp_path / "g.zarr", prompts, frames, image=open_video(frames))
    image = open_result(path).open_image()
    assert image.shape == (2, 8, 6)
    np.testing.assert_array_equal(image[1], frames[1])


def _referencing(tmp_path: Path, prompts: Prompts, name: str = "in.tif") -> tuple[Path, Path]:
    """A store that references (does not copy) a TIFF input; ``(store, input)``."""
    video = tmp_path / name
    frames = np.zeros((4, 600, 600), np.uint8)  # over 1 MiB: more than its hash covers
    frames[:, 4:8, 4:8] = 200
    tifffile.imwrite(video, frames, photometric="minisblack")
    source = {"kind": "tiff", "channel": None, **file_fingerprint(video)}
    return _store(tmp_path / "ref.zarr", prompts, frames, source=source), video


def test_the_unchanged_input_file_is_reopened(tmp_path: Path, prompts: Prompts) -> None:
    store, _ = _referencing(tmp_path, prompts)
    image = open_result(store).open_image()
    assert image is not None and image.shape == (4, 600, 600)
    assert image[2].max() == 200
    image.close()


def test_an_input_whose_size_changed_is_not_reopened(tmp_path: Path, prompts: Prompts) -> None:
    """Bytes appended after the first MiB keep its hash: only the size tells."""
    store, video = _referencing(tmp_path, prompts)
    recorded = open_result(store).metadata["source"]
    with open(video, "ab") as fh:
        fh.write(b"appended")
    assert file_fingerprint(video)["sha256_first_mb"] == recorded["sha256_first_mb"]
    assert open_video(video).shape == (4, 600, 600)  # still a readable TIFF
    assert open_result(store).open_image() is None


def test_an_input_replaced_by_another_is_not_reopened(tmp_path: Path, prompts: Prompts) -> None:
    store, video = _referencing(tmp_path, prompts)
    tifffile.imwrite(video, np.ones((4, 600, 600), np.uint8), photometric="minisblack")
    assert open_result(store).open_image() is None


def test_recorded_axes_reopen_an_ambiguous_input(tmp_path: Path, prompts: Prompts) -> None:
    """An input opened with axes= is reopened with the axes its store recorded."""
    video = tmp_path / "amb.npy"
    tcyx = np.random.default_rng(2).integers(0, 255, (3, 3, 64, 3), np.uint8)
    np.save(video, tcyx)
    source = {"kind": "array", "channel": None, "axes": "TCYX", **file_fingerprint(video)}
    store = _store(tmp_path / "n.zarr", prompts, np.moveaxis(tcyx, 1, -1), source=source)
    image = open_result(store).open_image()
    assert image is not None and image.shape == (3, 64, 3, 3)
    np.testing.assert_array_equal(image[1], np.moveaxis(tcyx[1], 0, -1))


def test_an_asked_channel_of_the_input_file_that_it_lacks_is_named(
    tmp_path: Path, prompts: Prompts
) -> None:
    """Without a channel, an unreadable input is ``None``; with one, the error says why."""
    store, video = _referencing(tmp_path, prompts)
    result = open_result(store)
    one = result.open_image(channel=0)
    assert one is not None and one.shape == (4, 600, 600)
    one.close()
    with pytest.raises(InputError, match=r"channel 1 does not exist \(the data has 1 channel\)"):
        result.open_image(channel=1)
    video.unlink()  # gone: nothing to read, whatever the channel
    assert result.open_image(channel=1) is None
