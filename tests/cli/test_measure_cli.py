"""``napari-sam2v measure --intensity / --image / --channel`` as a real subprocess."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from napari_sam2v.analysis import measure
from napari_sam2v.store import open_result
from napari_sam2v.store.pipeline import track
from tests.cli.conftest import cli, write_video


def _intensities(tables: Path) -> pd.DataFrame:
    frames = pd.read_csv(tables / "frames.csv")
    return frames.sort_values(["object_id", "frame"]).reset_index(drop=True)


def _tcyx_tiff(path: Path, *channels: np.ndarray) -> Path:
    """Write ``channels`` (``(t, y, x)`` each) as one ImageJ TIFF with axes TCYX."""
    tifffile.imwrite(path, np.stack(channels, 1), imagej=True, metadata={"axes": "TCYX"})
    return path


def _expected(store: Path, image: np.ndarray) -> pd.DataFrame:
    frames = measure(open_result(store), image).frames
    return frames.sort_values(["object_id", "frame"]).reset_index(drop=True)


def _assert_measured_in(tables: Path, store: Path, image: np.ndarray) -> None:
    """The CLI's mean intensities are those of ``image`` under the store's labels."""
    np.testing.assert_allclose(
        _intensities(tables)["mean_intensity"], _expected(store, image)["mean_intensity"]
    )


def _two_channel_store(
    tmp_path: Path, **track_options
) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """Channel 0 of a 2-channel TIFF tracked: ``(store, tiff, channel 0, channel 1)``."""
    video, prompts = write_video(tmp_path, "disks", n_frames=6)
    gray = tifffile.imread(video)
    other = (gray // 2 + 7).astype(np.uint16)
    multi = _tcyx_tiff(tmp_path / "two.tif", gray, other)
    store = tmp_path / "two.zarr"
    track(multi, prompts, store, engine="classic", channel=0, **track_options)
    return store, multi, gray, other


@pytest.fixture
def tracked(tmp_path: Path) -> tuple[Path, Path]:
    """A 6-frame TIFF and its store, which holds a copy of the frames (the default)."""
    video, prompts = write_video(tmp_path, "disks", n_frames=6)
    store = tmp_path / "disks.zarr"
    track(video, prompts, store, engine="classic")
    assert open_result(store).image_copied
    return video, store


def test_intensity_uses_the_image_copy_in_the_store(tracked, tmp_path: Path) -> None:
    video, store = tracked
    frames = tifffile.imread(video)
    video.unlink()  # the copy is enough
    proc = cli("measure", store, "--out", tmp_path / "t", "--intensity")
    assert proc.returncode == 0, proc.stderr
    got = _intensities(tmp_path / "t")
    want = _expected(store, frames)
    assert got["mean_intensity"].notna().all() and (got["mean_intensity"] > 2500).all()
    np.testing.assert_allclose(got["mean_intensity"], want["mean_intensity"])
    np.testing.assert_allclose(got["integrated_intensity"], want["integrated_intensity"])
    plain = cli("measure", store, "--out", tmp_path / "p")
    assert plain.returncode == 0, plain.stderr
    assert "mean_intensity" not in pd.read_csv(tmp_path / "p" / "frames.csv").columns


def test_store_without_a_copy_asks_for_image(tmp_path: Path) -> None:
    video, prompts = write_video(tmp_path, "disks", n_frames=6)
    store = tmp_path / "ref.zarr"
    track(video, prompts, store, engine="classic", copy_image=False)
    moved = video.rename(tmp_path / "moved.tif")
    proc = cli("measure", store, "--out", tmp_path / "t", "--intensity")
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {store} holds no copy of the tracked frames")
    assert "give the frames with --image PATH" in proc.stderr
    proc = cli("measure", store, "--out", tmp_path / "t", "--image", moved)  # implies intensity
    assert proc.returncode == 0, proc.stderr
    _assert_measured_in(tmp_path / "t", store, tifffile.imread(moved))


def test_image_of_another_length_or_size_is_refused(tracked, tmp_path: Path) -> None:
    video, store = tracked
    frames = tifffile.imread(video)
    short = tmp_path / "short.tif"
    tifffile.imwrite(short, frames[:4], photometric="minisblack")
    proc = cli("measure", store, "--out", tmp_path / "t", "--image", short)
    assert proc.returncode == 2
    assert f"--image {short} has 4 frames but the labels of {store} have 6" in proc.stderr
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, frames[:, :90, :100], photometric="minisblack")
    proc = cli("measure", store, "--out", tmp_path / "t", "--image", small)
    assert proc.returncode == 2
    assert "has 100x90-pixel frames but the labels of" in proc.stderr
    assert "are 128x96" in proc.stderr
    assert not (tmp_path / "t" / "frames.csv").exists()


def test_channel_of_a_multichannel_image(tmp_path: Path) -> None:
    store, multi, gray, other = _two_channel_store(tmp_path)
    proc = cli("measure", store, "--out", tmp_path / "c1", "--image", multi, "--channel", 1)
    assert proc.returncode == 0, proc.stderr
    _assert_measured_in(tmp_path / "c1", store, other)
    proc = cli("measure", store, "--out", tmp_path / "c0", "--image", multi)  # tracked channel
    assert proc.returncode == 0, proc.stderr
    _assert_measured_in(tmp_path / "c0", store, gray)
    # the store's copy holds channel 0: channel 1 comes from the unchanged input file
    proc = cli("measure", store, "--out", tmp_path / "s1", "--intensity", "--channel", 1)
    assert proc.returncode == 0, proc.stderr
    _assert_measured_in(tmp_path / "s1", store, other)
    proc = cli("measure", store, "--out", tmp_path / "s0", "--intensity", "--channel", 0)
    assert proc.returncode == 0, proc.stderr
    _assert_measured_in(tmp_path / "s0", store, gray)
    multi.rename(tmp_path / "moved.tif")
    proc = cli("measure", store, "--out", tmp_path / "x", "--intensity", "--channel", 1)
    assert proc.returncode == 2
    assert "its copy of the frames holds the tracked channel 0 only" in proc.stderr
    assert "--image PATH --channel 1" in proc.stderr
    assert not (tmp_path / "x" / "frames.csv").exists()


def test_another_channel_than_the_copy_is_never_the_copy(tmp_path: Path) -> None:
    """Channel 0 of a store that tracked (and copied) channel 1 is the file's channel 0."""
    video, prompts = write_video(tmp_path, "disks", n_frames=6)
    gray = tifffile.imread(video)
    triple = (gray.astype(np.uint32) * 3).astype(np.uint16)
    multi = _tcyx_tiff(tmp_path / "two.tif", triple, gray)
    store = tmp_path / "two.zarr"
    track(multi, prompts, store, engine="classic", channel=1)
    proc = cli("measure", store, "--out", tmp_path / "c0", "--intensity", "--channel", 0)
    assert proc.returncode == 0, proc.stderr
    _assert_measured_in(tmp_path / "c0", store, triple)
    image = open_result(store).open_image(channel=1)
    np.testing.assert_array_equal(image[2], gray[2])


def test_image_of_the_tracked_channel_alone_and_a_channel_it_lacks(tmp_path: Path) -> None:
    video, prompts = write_video(tmp_path, "disks", n_frames=6)
    gray = tifffile.imread(video)
    multi = _tcyx_tiff(tmp_path / "two.tif", gray // 3, gray)
    store = tmp_path / "two.zarr"
    track(multi, prompts, store, engine="classic", channel=1)
    # channel 1 saved alone: measured as it is, without --channel
    proc = cli("measure", store, "--out", tmp_path / "alone", "--image", video)
    assert proc.returncode == 0, proc.stderr
    _assert_measured_in(tmp_path / "alone", store, gray)
    proc = cli("measure", store, "--out", tmp_path / "x", "--image", video, "--channel", 1)
    assert proc.returncode == 2
    assert "channel 1 does not exist (the data has 1 channel)" in proc.stderr
    assert not (tmp_path / "x" / "frames.csv").exists()


@pytest.mark.parametrize("channel", [None, 1])
def test_image_is_opened_once(tmp_path: Path, monkeypatch, channel) -> None:
    import napari_sam2v.io as io
    from napari_sam2v.cli.main import main

    video, prompts = write_video(tmp_path, "disks", n_frames=4)
    gray = tifffile.imread(video)
    multi = _tcyx_tiff(tmp_path / "two.tif", gray, gray // 2)
    store = tmp_path / "two.zarr"
    track(multi, prompts, store, engine="classic", channel=0)
    opened: list[object] = []
    real = io.open_video

    def counting(*args, **kwargs):
        opened.append(kwargs.get("channel"))
        return real(*args, **kwargs)

    monkeypatch.setattr(io, "open_video", counting)
    argv = ["measure", str(store), "--out", str(tmp_path / "t"), "--image", str(multi)]
    argv += [] if channel is None else ["--channel", str(channel)]
    assert main(argv) == 0
    assert opened == [0 if channel is None else channel]
    expected = gray if channel is None else gray // 2
    _assert_measured_in(tmp_path / "t", store, expected)


def test_any_channel_of_a_referenced_multichannel_file(tmp_path: Path) -> None:
    """No copy in the store: the file it references has every channel to measure."""
    store, _, _, other = _two_channel_store(tmp_path, copy_image=False)
    assert not open_result(store).image_copied
    proc = cli("measure", store, "--out", tmp_path / "c1", "--intensity", "--channel", 1)
    assert proc.returncode == 0, proc.stderr
    _assert_measured_in(tmp_path / "c1", store, other)
    proc = cli("measure", store, "--out", tmp_path / "c2", "--intensity", "--channel", 2)
    assert proc.returncode == 2
    assert "channel 2 does not exist (the data has 2 channels)" in proc.stderr
    assert not (tmp_path / "c2" / "frames.csv").exists()


def test_a_store_partial_by_its_range_is_not_told_to_resume(tmp_path: Path) -> None:
    """A run that ended at --end left frames no --resume would track: say what would."""
    video, prompts = write_video(tmp_path, "disks", n_frames=6)
    store = tmp_path / "part.zarr"
    result = track(video, prompts, store, engine="classic", end=2)
    assert result.status == "partial"
    proc = cli("measure", store, "--out", tmp_path / "t")
    assert proc.returncode == 0, proc.stderr
    assert "frames 3-5 were never tracked" in proc.stderr
    assert "another --direction" in proc.stderr and "--resume" not in proc.stderr


def test_tables_are_never_written_into_the_store(tracked, tmp_path: Path) -> None:
    _, store = tracked
    proc = cli("measure", store, "--out", store / "tables")
    assert proc.returncode == 2
    assert "is inside the result store" in proc.stderr
    assert not (store / "tables").exists()
