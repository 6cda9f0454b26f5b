"""``axes=`` from ``track()``, ``napari-sam2v track/measure --axes`` and the batch's column."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_sam2v.batch import TaskOptions, VideoTask, process_video
from napari_sam2v.batch.manifest import read_manifest
from napari_sam2v.errors import InputError, StoreError
from napari_sam2v.io import open_video
from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.prompts import Prompt
from napari_sam2v.store import open_result
from napari_sam2v.store.pipeline import ProgressInfo, track
from tests.cli.conftest import cli
from tests.store.fake_engine import FakeEngine

#: Channels of the test stack: more than the shape-based inference reads as channels.
N_CHANNELS = 20


def _prompts() -> Prompts:
    return Prompts([], [Prompt(0, 1, points=[[30, 30]]), Prompt(0, 2, points=[[90, 70]])])


@pytest.fixture
def stack(tmp_path: Path, disk_video) -> tuple[Path, np.ndarray]:
    """A ``(t, 20, y, x)`` ``.npy`` whose channel 3 holds the disks (others: noise)."""
    frames, truth = disk_video
    rng = np.random.default_rng(3)
    data = rng.integers(900, 1100, (frames.shape[0], N_CHANNELS, *frames.shape[1:]))
    data = data.astype(np.uint16)
    data[:, 3] = frames
    path = tmp_path / "stack.npy"
    np.save(path, data)
    return path, truth


def test_track_reads_an_unnamed_stack_with_the_given_axes(tmp_path, stack) -> None:
    path, truth = stack
    with pytest.raises(InputError, match="axes='TCYX'"):
        track(path, _prompts(), tmp_path / "no.zarr", engine=FakeEngine(), channel=3)
    assert not (tmp_path / "no.zarr").exists()
    result = track(
        path, _prompts(), tmp_path / "r.zarr", engine=FakeEngine(), channel=3, axes="tcyx"
    )
    assert result.complete
    np.testing.assert_array_equal(result.labels_array()[:], truth)
    assert result.metadata["source"]["axes"] == "TCYX"
    image = result.open_image()  # the store's copy: the tracked channel, (t, y, x)
    assert image.shape == truth.shape


def test_resume_with_other_axes_is_refused(tmp_path, disk_video) -> None:
    """One file, two readings: (t, c, y, x) and (t, y, x, c) both give 96 x 96 frames."""
    frames, _ = disk_video
    rng = np.random.default_rng(4)
    data = rng.integers(900, 1100, (frames.shape[0], 96, 96, 96)).astype(np.uint16)
    data[:, 3] = frames[:, :, :96]
    path = tmp_path / "cube.npy"
    np.save(path, data)
    out = tmp_path / "r.zarr"
    stop = threading.Event()

    def halt(info: ProgressInfo) -> None:
        if info.done >= 3:
            stop.set()

    first = track(
        path,
        _prompts(),
        out,
        engine=FakeEngine(),
        channel=3,
        axes="TCYX",
        progress=halt,
        cancel=stop,
    )
    assert not first.complete
    before = first.frames_done.copy()
    with pytest.raises(StoreError, match="axes 'TYXC'.*read the video as 'TCYX'"):
        track(path, _prompts(), out, engine=FakeEngine(), channel=3, axes="TYXC", resume=True)
    np.testing.assert_array_equal(open_result(out).frames_done, before)
    done = track(path, _prompts(), out, engine=FakeEngine(), channel=3, axes="TCYX", resume=True)
    assert done.complete


def test_axes_with_a_ready_source_are_refused(tmp_path, disk_video) -> None:
    frames, _ = disk_video
    with open_video(frames) as video:
        with pytest.raises(InputError, match="give them to open_video"):
            track(video, _prompts(), tmp_path / "r.zarr", engine=FakeEngine(), axes="TYX")
    assert not (tmp_path / "r.zarr").exists()


def test_the_cli_passes_axes_to_track_and_measure(tmp_path, stack) -> None:
    path, truth = stack
    prompts = tmp_path / "p.json"
    _prompts().save(prompts)
    out = tmp_path / "cli.zarr"
    args = ("track", path, "--prompts", prompts, "--out", out, "--engine", "classic")
    refused = cli(*args, "--channel", "3")
    assert refused.returncode != 0 and "axes='TCYX'" in refused.stderr
    proc = cli(*args, "--channel", "3", "--axes", "TCYX", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert open_result(out).metadata["source"]["axes"] == "TCYX"
    bad = cli(*args, "--axes", "TQYX", "--overwrite")
    assert bad.returncode != 0 and "axes='TQYX' is not valid" in bad.stderr

    tables = tmp_path / "t"
    lone = cli("measure", out, "--out", tables, "--axes", "TCYX")
    assert lone.returncode != 0 and "--axes gives the axis order of --image" in lone.stderr
    image = ("measure", out, "--out", tables, "--image", path, "--channel", "5")
    assert cli(*image).returncode != 0  # the stack needs its axes
    done = cli(*image, "--axes", "TCYX")
    assert done.returncode == 0, done.stderr
    frames = pd.read_csv(tables / "frames.csv")
    assert frames["mean_intensity"].between(900, 1100).all()  # channel 5 is noise


def test_a_manifest_axes_column_reaches_track(tmp_path, stack) -> None:
    path, truth = stack
    prompts = tmp_path / "p.json"
    _prompts().save(prompts)
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        f"video,prompts,channel,axes\n{path.name},p.json,3,tcyx\n", encoding="utf-8"
    )
    (row,) = read_manifest(manifest).rows
    assert row.axes == "TCYX"
    task = VideoTask(row=row, out_dir=tmp_path / "out" / row.name, options=TaskOptions("classic"))
    outcome = process_video(task)
    assert outcome.status == "done", outcome.error
    assert open_result(task.store_path).metadata["source"]["axes"] == "TCYX"

    manifest.write_text(f"video,prompts,axes\n{path.name},p.json,TZYX\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"row 2: column 'axes': axes='TZYX' is not valid"):
        read_manifest(manifest)
