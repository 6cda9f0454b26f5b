"""``napari-sam2v track`` / ``measure`` as real subprocesses: results, errors, Ctrl-C, resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_sam2v.errors import Sam2vError
from napari_sam2v.samples import load_cells, load_reef
from napari_sam2v.store import open_result
from napari_sam2v.store.pipeline import track
from tests.cli.conftest import CLI, cli, cli_env, write_video

COMMANDS = ["track", "measure", "export", "demo", "models", "batch", "gui"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(command: str) -> None:
    proc = cli(command, "--help", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"usage: napari-sam2v {command}" in proc.stdout
    assert "examples:" in proc.stdout
    assert f"napari-sam2v {command}" in proc.stdout.split("examples:")[1]


def test_top_level_help_and_module_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "napari_sam2v.cli.main", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
    )
    assert proc.returncode == 0
    for command in COMMANDS:
        assert command in proc.stdout
    assert cli("--version").stdout.startswith("napari-sam2v ")


def test_track_and_measure_reef_sample_classic(tmp_path: Path) -> None:
    reef = load_reef()
    store = tmp_path / "reef.zarr"
    proc = cli(
        "track",
        reef.video_path,
        "--prompts",
        reef.prompts_path,
        "--out",
        store,
        "--engine",
        "classic",
    )
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {store}: 48/48 frames done, 3 objects (fish 1, fish 2, fish 3)" in proc.stdout
    # Not a terminal: plain progress lines, no carriage-return bar.
    assert "tracking: 48/48 frames (100%)" in proc.stderr
    assert "\r" not in proc.stderr
    result = open_result(store)
    assert result.complete and not result.random_weights
    assert set(np.unique(np.asarray(result.labels))) == {0, 1, 2, 3}

    tables = tmp_path / "tables"
    proc = cli(
        "measure",
        store,
        "--out",
        tables,
        "--pixel-size",
        "0.5",
        "--unit",
        "mm",
        "--frame-interval",
        "2",
        "--format",
        "parquet",
        "--plots",
    )
    assert proc.returncode == 0, proc.stderr
    assert "mm^2" in proc.stdout and "mm/s" in proc.stdout
    frames = pd.read_parquet(tables / "frames.parquet")
    np.testing.assert_allclose(frames["area"], frames["area_px"] * 0.25)
    np.testing.assert_allclose(frames["time"], frames["frame"] * 2.0)
    tracks = pd.read_parquet(tables / "tracks.parquet")
    assert sorted(tracks["object_id"]) == [1, 2, 3]
    sidecar = json.loads((tables / "measurements.json").read_text())
    assert sidecar["calibration"]["unit"] == "mm"
    for plot in ("area", "trajectories", "speed", "msd"):
        assert (tables / f"{plot}.png").stat().st_size > 0
        assert f"wrote {tables / f'{plot}.png'}" in proc.stdout


@pytest.mark.slow
def test_existing_store_needs_resume_or_overwrite(tmp_path: Path, disk_tiff) -> None:
    video, prompts = disk_tiff
    store = tmp_path / "disks.zarr"
    track(video, prompts, store, engine="classic")
    before = np.asarray(open_result(store).labels)
    args = ("track", video, "--prompts", prompts, "--out", store, "--engine", "classic", "-q")
    again = cli(*args)
    assert again.returncode == 2
    assert again.stderr.strip() == (
        f"error: {store} already holds a result store: --resume continues it, --overwrite "
        "replaces it; or choose another --out"
    )
    np.testing.assert_array_equal(np.asarray(open_result(store).labels), before)
    overwritten = cli(*args, "--overwrite")
    assert overwritten.returncode == 0, overwritten.stderr
    assert open_result(store).complete


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing video", "no such file"),
        ("missing prompts", "prompt file not found"),
        ("bad json", "prompts.json"),
        ("click outside", "outside the 128x96 frame"),
        ("end beyond video", "end frame 99 is outside the video"),
        ("pixel size without unit", "needs a unit"),
    ],
)
def test_expected_errors_are_one_line(tmp_path: Path, disk_tiff, case: str, message: str) -> None:
    video, prompts = disk_tiff
    extra: list[object] = []
    if case == "missing video":
        video = tmp_path / "nope.mp4"
    elif case == "missing prompts":
        prompts = tmp_path / "nope.json"
    elif case == "bad json":
        prompts = tmp_path / "prompts.json"
        prompts.write_text('{"version": 1, "objects": [')
    elif case == "click outside":
        prompts = tmp_path / "outside.csv"
        prompts.write_text("frame,object,x,y,label\n0,1,400,30,1\n")
    elif case == "pixel size without unit":
        extra = ["--pixel-size", "0.5"]
    else:
        extra = ["--end", "99"]
    store = tmp_path / "out.zarr"
    proc = cli("track", video, "--prompts", prompts, "--out", store, "--engine", "classic", *extra)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert message in lines[0]


def test_calibration_flags_are_recorded_in_the_store(tmp_path: Path, disk_tiff) -> None:
    import argparse

    from napari_sam2v.cli.track import _resume_command

    video, prompts = disk_tiff
    store = tmp_path / "cal.zarr"
    calibration = ("--pixel-size", "0.8", "--unit", "mm", "--frame-interval", "30")
    args = ("track", video, "--prompts", prompts, "--out", store, "--engine", "classic")
    proc = cli(*args, *calibration, "-q")
    assert proc.returncode == 0, proc.stderr
    cal = open_result(store).calibration
    assert (cal.pixel_size, cal.unit, cal.frame_interval, cal.time_unit) == (0.8, "mm", 30.0, "s")
    # measure needs no flags now: the store's calibration gives physical units
    measured = cli("measure", store, "--out", tmp_path / "tables")
    assert measured.returncode == 0, measured.stderr
    frames = pd.read_csv(tmp_path / "tables" / "frames.csv")
    np.testing.assert_allclose(frames["area"], frames["area_px"] * 0.64)
    np.testing.assert_allclose(frames["time"], frames["frame"] * 30.0)
    # an interrupted run's resume command repeats the calibration
    namespace = argparse.Namespace(
        video="v.mp4",
        prompts="p.json",
        out="o.zarr",
        engine="classic",
        direction="forward",
        model=None,
        start=None,
        end=None,
        channel=None,
        axes="TCYX",
        pixel_size=0.8,
        unit="mm",
        frame_interval=30.0,
        time_unit=None,
        device="auto",
        precision="auto",
        option=[],
    )
    command = _resume_command(namespace)
    assert "--axes TCYX --pixel-size 0.8 --unit mm --frame-interval 30.0 --resume" in command


def test_bad_arguments_exit_2_with_usage(disk_tiff) -> None:
    video, prompts = disk_tiff
    proc = cli("track", video, "--prompts", prompts, "--out", "x.zarr", "--start", "-3")
    assert proc.returncode == 2
    assert "expected an integer >= 0" in proc.stderr


def track_cells(store: Path, *options: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``napari-sam2v track`` on the bundled cells sample with its clicks."""
    cells = load_cells()
    args = ("track", cells.video_path, "--prompts", cells.prompts_path, "--out", store)
    return cli(*args, *options, timeout=timeout)


SAM2_RANDOM_TINY = ("--engine", "sam2", "--model", "random-tiny", "--device", "cpu")


def test_random_tiny_on_the_cells_sample_is_labelled(tmp_path: Path) -> None:
    store = tmp_path / "random.zarr"
    proc = track_cells(store, *SAM2_RANDOM_TINY, "--end", "2")
    assert proc.returncode == 0, proc.stderr
    assert "3/37 frames done, 7 objects" in proc.stdout
    assert "random weights" in proc.stderr and "not a result" in proc.stderr
    result = open_result(store)
    assert result.random_weights
    assert result.frames_done[:3].all() and not result.frames_done[3:].any()


def test_precision_option(tmp_path: Path) -> None:
    store = tmp_path / "mixed.zarr"
    proc = track_cells(store, *SAM2_RANDOM_TINY, "--end", "1", "--precision", "mixed")
    assert proc.returncode == 0, proc.stderr
    assert open_result(store).frames_done[:2].all()
    bad = track_cells(tmp_path / "classic.zarr", "--engine", "classic", "--precision", "mixed")
    assert bad.returncode == 2
    assert "error: --precision applies to the sam2 engine only" in bad.stderr
    bad = track_cells(tmp_path / "classic.zarr", "--engine", "classic", "--model", "x.pt")
    assert bad.returncode == 2
    assert "error: --model applies to the sam2 engine only" in bad.stderr
    both = track_cells(tmp_path / "classic.zarr", "--engine", "classic", "--resume", "--overwrite")
    assert both.returncode == 2
    assert "--overwrite: not allowed with argument --resume" in both.stderr
    assert not (tmp_path / "classic.zarr").exists()
    assert not (tmp_path / "classic.zarr").exists()


def test_engine_options_reach_the_engine(tmp_path: Path, disk_tiff) -> None:
    video, prompts = disk_tiff
    store = tmp_path / "phase.zarr"
    options = ("--engine", "classic", "--option", "feature=bright", "--option", "max-area-change=3")
    proc = cli("track", video, "--prompts", prompts, "--out", store, *options)
    assert proc.returncode == 0, proc.stderr
    settings = open_result(store).metadata["engine"]["settings"]
    assert settings["feature"] == "bright"
    assert settings["max_area_change"] == 3


@pytest.mark.parametrize(
    ("option", "engine", "message"),
    [
        ("feature", "classic", "expected KEY=VALUE"),
        ("nonsense=1", "classic", "unknown option(s) nonsense"),
        ("feature=glitter", "classic", "unknown feature 'glitter'"),
        ("model=sam2.1-small", "sam2", "use --model instead"),
        ("frames_per_step=2", "sam2", "sam2 engine: unknown option(s) frames_per_step"),
    ],
)
def test_bad_engine_options_are_refused(
    tmp_path: Path, disk_tiff, option: str, engine: str, message: str
) -> None:
    video, prompts = disk_tiff
    store = tmp_path / "bad.zarr"
    args = ("track", video, "--prompts", prompts, "--out", store)
    proc = cli(*args, "--engine", engine, "--option", option)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not store.exists()


def test_engine_option_values_are_typed() -> None:
    from napari_sam2v.cli.track import engine_option

    assert engine_option("feature=phase") == ("feature", "phase")
    assert engine_option("memory-frames=3") == ("memory_frames", 3)
    assert engine_option("sigma=0.5") == ("sigma", 0.5)
    assert engine_option("split_touching=False") == ("split_touching", False)
    assert engine_option("threshold=none") == ("threshold", None)


def _interrupt_after(args: list[str], store: Path, frames: int) -> tuple[int, str]:
    """Run ``track``, press Ctrl-C once ``frames`` frames are on disk; return (status, stderr)."""
    proc = subprocess.Popen(
        args, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if open_result(store).frames_done.sum() >= frames:
                    break
            except Sam2vError:  # the store is still being created
                pass
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode, stdout + stderr


def _check_interrupt_and_resume(
    tmp_path: Path, n_frames: int, after: list[int]
) -> list[tuple[int, int]]:
    """Interrupt ``track`` after each count of frames, resume, compare with a clean run.

    Returns the (exit status, frames on disk) of each interrupted run.
    """
    video, prompts = write_video(tmp_path, "long", n_frames=n_frames, shape=(192, 256))
    store = tmp_path / "long.zarr"
    args = [
        CLI,
        "track",
        str(video),
        "--prompts",
        str(prompts),
        "--out",
        str(store),
        "--engine",
        "classic",
    ]
    saved = 0
    runs = []
    for i, frames in enumerate(after):
        status, output = _interrupt_after(args + (["--resume"] if i else []), store, frames)
        assert status in (0, 130), output
        assert "Traceback" not in output
        if status == 130:
            assert "stopping after the current frame" in output and "--resume" in output
        partial = open_result(store)
        now = int(partial.frames_done.sum())
        # Finished frames are never lost, and they form the prefix a forward run writes.
        assert now >= saved and partial.frames_done[:now].all(), (now, saved, output)
        saved = now
        runs.append((status, now))
    resumed = cli(*args[1:], "--resume", "-q")
    assert resumed.returncode == 0, resumed.stderr
    final = open_result(store)
    assert final.complete
    reference = tmp_path / "reference.zarr"
    done = cli(
        "track", video, "--prompts", prompts, "--out", reference, "--engine", "classic", "-q"
    )
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(
        np.asarray(final.labels), np.asarray(open_result(reference).labels)
    )
    return runs


def test_ctrl_c_stops_cleanly_and_resume_finishes(tmp_path: Path) -> None:
    [(status, saved)] = _check_interrupt_and_resume(tmp_path, 160, [5])
    assert status == 130
    assert 5 <= saved < 160


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ctrl_c_at_random_points_then_resume(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    after = sorted(int(x) for x in rng.integers(1, 300, size=3))
    _check_interrupt_and_resume(tmp_path, 400, after)


def test_track_interval_without_unit_notes_the_metadata_unit(tmp_path: Path) -> None:
    """The cells sample records minutes: --frame-interval alone is seconds, with a note."""
    cells = load_cells()
    common = ["--prompts", cells.prompts_path, "--engine", "classic", "--end", "1", "-q"]
    proc = cli(
        "track", cells.video_path, *common, "--out", tmp_path / "s.zarr", "--frame-interval", "600"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == (
        f"note: {cells.video_path}: --frame-interval 600 is in s (the default unit), but its "
        "metadata records 10.2 min/frame; add --time-unit min to give it in min"
    )
    stored = open_result(tmp_path / "s.zarr").calibration
    assert (stored.frame_interval, stored.time_unit) == (600.0, "s")
    quiet = cli(
        "track",
        cells.video_path,
        *common,
        "--out",
        tmp_path / "m.zarr",
        "--frame-interval",
        "10",
        "--time-unit",
        "min",
    )
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert open_result(tmp_path / "m.zarr").calibration.frame_interval == 10.0


def test_track_unit_without_size_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """The cells sample is 0.87 um/pixel: --unit mm alone would make it 0.87 mm."""
    cells = load_cells()
    out = tmp_path / "mm.zarr"
    proc = cli(
        "track", cells.video_path, "--prompts", cells.prompts_path, "--out", out,
        "--engine", "classic", "--unit", "mm",
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: the unit mm without a pixel size would relabel 0.87 um as 0.87 mm; give "
        "the pixel size in mm as well (0.87 um is 0.00087 mm)"
    )
    assert not out.exists()


def test_warnings_are_one_plain_line_and_non_square_pixels_stay_in_pixels(tmp_path):
    import tifffile

    cells = load_cells()
    video = tmp_path / "aniso.tif"
    frames = tifffile.imread(cells.video_path)[:4]
    tifffile.imwrite(
        video,
        frames,
        imagej=True,
        resolution=(1 / 0.87, 1 / 1.74),
        metadata={"axes": "TYX", "unit": "um"},
    )
    out = tmp_path / "aniso.zarr"
    proc = cli(
        "track", video, "--prompts", cells.prompts_path, "--out", out, "--engine", "classic", "-q"
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "warning: " in proc.stderr and "pixels are not square (1.74 x 0.87" in proc.stderr
    assert "UserWarning" not in proc.stderr and "warnings.warn" not in proc.stderr
    assert open_result(out).calibration.unit == "px"
