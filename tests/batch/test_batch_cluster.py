"""A batch on a real ``dask scheduler`` + two ``dask worker`` processes, one killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest

from napari_sam2v.store import open_result
from napari_sam2v.store.layout import PRIVATE
from tests.batch.conftest import BIN, free_port, write_manifest, write_video

STARTUP_TIMEOUT_S = 60
BATCH_TIMEOUT_S = 180


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process group we started: SIGTERM, then SIGKILL."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = log.open("w")
    try:
        return subprocess.Popen(
            args, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        handle.close()


def _wait_workers(address: str, n: int) -> None:
    from distributed import Client

    with Client(address, timeout="30s") as client:
        client.wait_for_workers(n, timeout=STARTUP_TIMEOUT_S)


@pytest.fixture
def cluster(tmp_path: Path, batch_env) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen] = []
    try:
        procs.append(
            _spawn(
                [
                    str(BIN / "dask"),
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-dashboard",
                ],
                batch_env,
                logs / "scheduler.log",
            )
        )
        workers = []
        for i in range(2):
            worker = _spawn(
                [
                    str(BIN / "dask"),
                    "worker",
                    address,
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--no-dashboard",
                    "--name",
                    f"w{i}",
                    "--memory-limit",
                    "0",
                ],
                batch_env,
                logs / f"worker{i}.log",
            )
            procs.append(worker)
            workers.append(worker)
        _wait_workers(address, 2)
        yield address, workers
    finally:
        for proc in reversed(procs):
            _stop(proc)


def _lock_owner(store: Path) -> int | None:
    try:
        owner = json.loads((store / PRIVATE / "lock.json").read_text())
    except (OSError, ValueError):
        return None
    pid = owner.get("pid")
    return pid if isinstance(pid, int) else None


def _group_of(pid: int, workers: list[subprocess.Popen]) -> subprocess.Popen | None:
    for worker in workers:
        if worker.poll() is not None:
            continue
        family = {worker.pid} | {c.pid for c in psutil.Process(worker.pid).children(recursive=True)}
        if pid in family:
            return worker
    return None


def test_batch_survives_a_killed_worker(tmp_path: Path, batch_env, cluster) -> None:
    address, workers = cluster
    data = tmp_path / "data"
    data.mkdir()
    names = ["reef_a", "reef_b", "reef_c"]
    for name in names:
        write_video(data, name, n_frames=120, shape=(192, 256))
    manifest = write_manifest(data, [f"{n}.tif,{n}.json" for n in names])
    out = tmp_path / "out"
    batch = subprocess.Popen(
        [
            str(BIN / "napari-sam2v"),
            "batch",
            str(manifest),
            "--out",
            str(out),
            "--scheduler",
            address,
            "--engine",
            "classic",
        ],
        env=batch_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    killed_pid = None
    try:
        deadline = time.monotonic() + BATCH_TIMEOUT_S
        while killed_pid is None and time.monotonic() < deadline and batch.poll() is None:
            for name in names:
                store = out / name / "result.zarr"
                if (out / name / "done.json").exists():
                    continue
                pid = _lock_owner(store)
                victim = None if pid is None else _group_of(pid, workers)
                if victim is not None:
                    os.killpg(victim.pid, signal.SIGKILL)
                    victim.wait(timeout=10)
                    killed_pid = pid
                    break
            time.sleep(0.05)
        assert killed_pid is not None, "no worker was caught in the middle of a video"
        stdout, stderr = batch.communicate(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        _stop(batch)
    assert batch.returncode == 0, stdout + stderr
    assert "Traceback" not in stderr
    report = json.loads((out / "batch_report.json").read_text())
    assert report["counts"] == {"total": 3, "done": 3, "skipped": 0, "failed": 0}
    videos = {v["name"]: v for v in report["videos"]}
    # The killed worker's video was finished by the surviving worker, from its store.
    assert all(v["pid"] != killed_pid for v in videos.values())
    assert any(v["resumed"] for v in videos.values())
    survivors = {v["pid"] for v in videos.values()}
    assert len(survivors) == 1
    # The engine was built once on the surviving worker, not once per video.
    assert report["model_loads"] == 1
    reference = None
    for name in names:
        result = open_result(out / name / "result.zarr")
        assert result.complete
        labels = np.asarray(result.labels)
        assert set(np.unique(labels)) == {0, 1, 2}
        # Same input everywhere: the resumed store equals the uninterrupted ones.
        if reference is None:
            reference = labels
        np.testing.assert_array_equal(labels, reference)
