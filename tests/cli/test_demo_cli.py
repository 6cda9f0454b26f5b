"""``napari-sam2v demo``: the whole pipeline on both samples, offline, as a subprocess."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_sam2v.cli.demo import CPU_SAM2_FRAMES, frame_limit, mean_iou
from napari_sam2v.store import open_result
from tests.cli.conftest import CLI, cli, cli_env


def run_demo(*args: object, home: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = cli_env()
    env["HF_HOME"] = str(home)  # an empty cache: SAM 2.1-tiny is not available
    return subprocess.run(
        [CLI, "demo", *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_demo_auto_falls_back_to_classic_offline(tmp_path: Path) -> None:
    out = tmp_path / "demo_output"
    proc = run_demo("--out", out, home=tmp_path / "hf")
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if "classic engine" in line]
    assert notes == [
        "sam2.1-tiny weights are not cached and HF_HUB_OFFLINE is set: using the weights-free "
        "classic engine (for SAM 2 run 'napari-sam2v models download sam2.1-tiny')"
    ]
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:4] == ["sample", "engine", "frames", "objects"]
    reef = lines[2].split()
    cells = lines[3].split()
    assert reef[:4] == ["reef", "classic", "48", "3"]
    assert cells[:4] == ["cells", "classic", "37", "7"]
    # Units: the reef clip is spatially uncalibrated (px, 12 fps); cells are in um and min.
    assert "px^2" in lines[2] and "px/s" in lines[2]
    assert "um^2" in lines[3] and "um/min" in lines[3]
    for name, n_frames in (("reef", 48), ("cells", 37)):
        folder = out / name
        assert f"{name}: store {folder / 'result.zarr'}" in proc.stdout
        result = open_result(folder / "result.zarr")
        assert result.complete and result.labels.shape[0] == n_frames
        assert result.metadata["engine"]["engine"] == "classic"
        tracks = pd.read_csv(folder / "tables" / "tracks.csv")
        assert len(tracks) == len(result.objects)
        assert (folder / "tables" / "measurements.json").is_file()
        for plot in ("area", "trajectories", "speed", "msd"):
            assert (folder / "plots" / f"{plot}.png").stat().st_size > 0
    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["status"] == "done"
    by_sample = {s["sample"]: s for s in summary["summaries"]}
    # The printed IoU is the one recorded, and the reef's exact ground truth is matched well.
    assert f"{by_sample['reef']['iou']:.3f}" in lines[2]
    assert by_sample["reef"]["iou"] > 0.7


def test_demo_refuses_random_weights_and_foreign_folders(tmp_path: Path) -> None:
    proc = cli("demo", "--out", tmp_path / "d", "--engine", "sam2", "--model", "random-tiny")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: the demo shows real results, but 'random-tiny' has")
    assert not (tmp_path / "d").exists()

    foreign = tmp_path / "mine"
    (foreign / "reef").mkdir(parents=True)
    (foreign / "reef" / "precious.txt").write_text("keep me")
    proc = run_demo("--out", foreign, "--engine", "classic", home=tmp_path / "hf")
    assert proc.returncode == 2
    assert "was not written by the demo; choose another --out" in proc.stderr
    assert (foreign / "reef" / "precious.txt").read_text() == "keep me"


def test_mean_iou_scores_only_the_given_objects() -> None:
    reference = np.zeros((2, 4, 4), np.uint16)
    reference[:, :2, :2] = 1
    reference[:, 2:, 2:] = 9  # not tracked
    labels = np.zeros_like(reference)
    labels[0, :2, :2] = 1
    labels[1, :2, :1] = 1
    assert mean_iou(labels, reference, [1]) == 0.75
    assert mean_iou(labels, reference) == 0.375
    assert mean_iou(labels[:1], reference) is None
    assert mean_iou(labels, reference, [1], frames=[0]) == 1.0


def test_frame_limit_keeps_sam2_on_a_cpu_under_budget() -> None:
    assert frame_limit("classic", "auto", None) is None
    assert frame_limit("sam2", "cpu", None) == CPU_SAM2_FRAMES
    assert frame_limit("sam2", "cuda", None) is None
    assert frame_limit("sam2", "cpu", 0) is None
    assert frame_limit("classic", "cpu", 7) == 7


@pytest.mark.slow
def test_demo_max_frames_tracks_a_prefix(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = run_demo(
        "--out",
        out,
        "--engine",
        "classic",
        "--sample",
        "reef",
        "--max-frames",
        "5",
        home=tmp_path / "hf",
    )
    assert proc.returncode == 0, proc.stderr
    row = proc.stdout.splitlines()[2].split()
    assert row[:4] == ["reef", "classic", "5/48", "3"]
    done = open_result(out / "reef" / "result.zarr").frames_done
    assert done[:5].all() and not done[5:].any()
