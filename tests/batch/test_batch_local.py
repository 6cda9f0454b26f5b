"""``napari-sam2v batch`` on its own LocalCluster: failures, report, combined tables, re-runs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_sam2v.batch import run_batch
from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.prompts import Prompt
from napari_sam2v.store import open_result
from tests.batch.conftest import BIN, write_manifest, write_video


def run_batch_cli(
    manifest: Path, out: Path, env: dict[str, str], *extra: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(BIN / "napari-sam2v"),
            "batch",
            str(manifest),
            "--out",
            str(out),
            "--workers",
            "1",
            "--engine",
            "classic",
            "--format",
            "parquet",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


def test_batch_reports_failures_and_resumes_on_rerun(tmp_path: Path, batch_env) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_video(data, "good_a")
    write_video(data, "good_b", n_frames=10)
    _, bad_prompts = write_video(data, "bad")
    # A click outside the 128x96 frame: this video fails, the others go on.
    Prompts(prompts=[Prompt(frame=0, object_id=1, points=[[500, 30]])]).save(bad_prompts)
    manifest = write_manifest(
        data,
        ["good_a.tif,good_a.json,0.5,um,2", "good_b.tif,good_b.json,,,", "bad.tif,bad.json,,,"],
        header="video,prompts,pixel_size,unit,frame_interval",
    )
    out = tmp_path / "out"

    first = run_batch_cli(manifest, out, batch_env)
    assert first.returncode == 1, first.stderr
    assert "Traceback" not in first.stderr
    assert "1 of 3 videos failed" in first.stderr
    assert "FAILED row 4 bad:" in first.stdout
    report = json.loads((out / "batch_report.json").read_text())
    assert report["counts"] == {"total": 3, "done": 2, "skipped": 0, "failed": 1}
    failed = report["videos"][2]
    assert failed["name"] == "bad" and failed["status"] == "failed"
    assert "outside" in failed["error"] and "Traceback" not in failed["error"]
    for name, n_frames in (("good_a", 12), ("good_b", 10)):
        result = open_result(out / name / "result.zarr")
        assert result.complete and result.labels.shape[0] == n_frames
        assert (out / name / "tables" / "tracks.parquet").is_file()
        assert (out / name / "done.json").is_file()
    tracks = pd.read_parquet(out / "batch_tracks.parquet")
    assert tracks.columns[0] == "video"
    assert sorted(set(tracks["video"])) == ["good_a", "good_b"]
    assert len(tracks) == 4  # two objects per video
    frames = pd.read_csv(out / "batch_frames.csv")
    per_video = frames.groupby("video")["frame"].nunique().to_dict()
    assert per_video == {"good_a": 12, "good_b": 10}
    # The row's calibration reaches the measurements: areas in um^2 = px * 0.25,
    # and the store records it (OME-Zarr scale, exports, later measurements).
    good_a = frames[frames["video"] == "good_a"]
    np.testing.assert_allclose(good_a["area"], good_a["area_px"] * 0.25)
    recorded = open_result(out / "good_a" / "result.zarr").calibration
    assert (recorded.pixel_size, recorded.unit, recorded.frame_interval) == (0.5, "um", 2.0)
    assert not open_result(out / "good_b" / "result.zarr").calibration.is_spatially_calibrated
    assert report["wall_seconds"] > 0
    assert report["videos"][0]["seconds"]["track"] > 0
    assert report["videos"][0]["engine_info"]["engine"] == "classic"

    # Re-running skips finished videos without even starting a cluster.
    mtime = (out / "good_a" / "done.json").stat().st_mtime_ns
    finished = write_manifest(
        data,
        ["good_a.tif,good_a.json,0.5,um,2", "good_b.tif,good_b.json,,,"],
        header="video,prompts,pixel_size,unit,frame_interval",
    )
    report = run_batch(finished, out, engine="classic")
    assert [o.status for o in report.outcomes] == ["skipped", "skipped"]
    assert report.scheduler == "none" and report.n_workers == 0
    assert [o.n_frames for o in report.outcomes] == [12, 10]
    assert (out / "good_a" / "done.json").stat().st_mtime_ns == mtime
    tracks = pd.read_parquet(out / "batch_tracks.parquet")
    assert sorted(set(tracks["video"])) == ["good_a", "good_b"]

    # The pixel size was wrong: fix the manifest and --remeasure. Finished videos are
    # measured again (not tracked), the stores record the row's new calibration and
    # the combined tables are rebuilt.
    labels = open_result(out / "good_a" / "result.zarr").labels[:]
    fixed = write_manifest(
        data,
        ["good_a.tif,good_a.json,0.25,um,2", "good_b.tif,good_b.json,,,"],
        header="video,prompts,pixel_size,unit,frame_interval",
    )
    again = run_batch_cli(fixed, out, batch_env, "--remeasure")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("(measured from its finished store, not tracked)") == 2
    frames = pd.read_csv(out / "batch_frames.csv")
    good_a = frames[frames["video"] == "good_a"]
    np.testing.assert_allclose(good_a["area"], good_a["area_px"] * 0.0625)
    result = open_result(out / "good_a" / "result.zarr")
    assert result.calibration.pixel_size == 0.25
    np.testing.assert_array_equal(result.labels[:], labels)
    report = json.loads((out / "batch_report.json").read_text())
    assert [video["measured_only"] for video in report["videos"]] == [True, True]


def test_invalid_manifest_is_one_clear_error(tmp_path: Path, batch_env) -> None:
    write_video(tmp_path, "a")
    manifest = write_manifest(tmp_path, ["a.tif,a.json,-2"], header="video,prompts,pixel_size")
    proc = run_batch_cli(manifest, tmp_path / "out", batch_env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: manifest {manifest}: row 2: column 'pixel_size' must be a positive finite "
        "number, got '-2'"
    ]
    assert not (tmp_path / "out").exists()


def test_unreachable_scheduler_is_one_clear_error(tmp_path: Path, batch_env) -> None:
    from tests.batch.conftest import free_port

    write_video(tmp_path, "a")
    manifest = write_manifest(tmp_path, ["a.tif,a.json"])
    address = f"tcp://127.0.0.1:{free_port()}"
    proc = subprocess.run(
        [
            str(BIN / "napari-sam2v"),
            "batch",
            str(manifest),
            "--out",
            str(tmp_path / "out"),
            "--scheduler",
            address,
            "--engine",
            "classic",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=batch_env,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"error: cannot reach the dask scheduler at {address}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_engine_option_fails_before_any_video(tmp_path: Path, batch_env) -> None:
    write_video(tmp_path, "a")
    manifest = write_manifest(tmp_path, ["a.tif,a.json"])
    proc = subprocess.run(
        [
            str(BIN / "napari-sam2v"),
            "batch",
            str(manifest),
            "--out",
            str(tmp_path / "out"),
            "--engine",
            "classic",
            "--option",
            "feature=glitter",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=batch_env,
    )
    assert proc.returncode == 2, proc.stderr
    assert "unknown feature 'glitter'" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_run_batch_refuses_options_with_their_own_argument(tmp_path: Path) -> None:
    from napari_sam2v.errors import InputError

    write_video(tmp_path, "a")
    manifest = write_manifest(tmp_path, ["a.tif,a.json"])
    with pytest.raises(InputError, match="'device' has its own argument"):
        run_batch(manifest, tmp_path / "out", engine="classic", engine_options={"device": "cpu"})
    assert not (tmp_path / "out").exists()


def test_ctrl_c_in_a_terminal_stops_the_batch_cleanly(tmp_path: Path, batch_env) -> None:
    """SIGINT to the whole process group, as a terminal sends it: no worker tracebacks."""
    import os
    import signal
    import time

    from napari_sam2v.batch import worker
    from napari_sam2v.errors import Sam2vError

    write_video(tmp_path, "short", n_frames=5)
    write_video(tmp_path, "long", n_frames=600)
    manifest = write_manifest(tmp_path, ["short.tif,short.json", "long.tif,long.json"])
    out = tmp_path / "out"
    args = [str(BIN / "napari-sam2v"), "batch", str(manifest), "--out", str(out),
            "--workers", "1", "--engine", "classic"]  # fmt: skip
    proc = subprocess.Popen(args, env=batch_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if open_result(out / "long" / "result.zarr").frames_done.sum() >= 5:
                    break
            except Sam2vError:  # not created yet
                pass
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert "stopping the batch" in stderr and "interrupted: re-run" in stderr
    assert "Traceback" not in stdout + stderr and "KeyboardInterrupt" not in stderr
    report = json.loads((out / "batch_report.json").read_text())
    assert [(v["name"], v["status"]) for v in report["videos"]] == [
        ("short", "done"),
        ("long", "failed"),
    ]
    assert report["videos"][1]["error"] == worker.STOPPED, report["videos"]
    assert 5 <= open_result(out / "long" / "result.zarr").frames_done.sum() < 600
