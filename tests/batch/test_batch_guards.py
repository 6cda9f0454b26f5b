"""run_batch guards: an interrupted batch still reports, a private local cluster, early checks."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from napari_sam2v.batch import read_manifest, run_batch, worker
from napari_sam2v.errors import InputError
from tests.batch.conftest import write_manifest, write_video


def _two_videos(tmp_path: Path) -> Path:
    for name in ("a", "b"):
        write_video(tmp_path, name, n_frames=5)
    return write_manifest(tmp_path, ["a.tif,a.json", "b.tif,b.json"])


def test_an_interrupted_batch_writes_its_report_and_resumes(tmp_path: Path) -> None:
    manifest, out = _two_videos(tmp_path), tmp_path / "out"

    def stop(outcome, finished, total) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(manifest, out, engine="classic", workers=1, on_outcome=stop)
    report = json.loads((out / "batch_report.json").read_text())
    assert "done" in {v["status"] for v in report["videos"]}
    for video in report["videos"]:
        # The stopped video is done when its worker had finished it (its result never
        # reached the batch); a cancel does not stop a running task, so its worker may
        # also finish it after the report is written.
        if video["status"] != "done":
            assert video["status"] == "failed"
            assert "the batch stopped (KeyboardInterrupt)" in video["error"]
            assert "re-run the same command" in video["error"]
    again = run_batch(manifest, out, engine="classic", workers=1)
    assert again.ok and len(again.skipped) >= 1


def test_a_video_its_worker_finished_is_reported_done_after_an_interrupt(
    tmp_path: Path,
) -> None:
    from napari_sam2v.batch.runner import _finished_meanwhile
    from napari_sam2v.batch.tasks import TaskOptions, VideoTask
    from napari_sam2v.batch.worker import process_video

    manifest = read_manifest(_two_videos(tmp_path))
    task = VideoTask(row=manifest.rows[0], out_dir=tmp_path / "out" / "a",
                     options=TaskOptions(engine="classic"))  # fmt: skip
    since = time.time()
    assert _finished_meanwhile(task, since) is None  # nothing finished yet
    assert process_video(task).status == "done"
    recovered = _finished_meanwhile(task, since)
    assert recovered is not None and recovered.status == "done" and recovered.n_frames == 5
    assert _finished_meanwhile(task, time.time() + 60) is None  # an earlier run's marker


def test_the_local_cluster_refuses_other_clients(tmp_path: Path) -> None:
    from distributed import Client

    from napari_sam2v.batch.runner import _connect

    with _connect(None, 1, 1) as (client, address):
        assert address.startswith("tls://127.0.0.1:")
        assert client.submit(sum, [1, 2]).result(timeout=30) == 3
        outsider = address.replace("tls://", "tcp://")
        with pytest.raises((OSError, TimeoutError)):
            Client(outsider, timeout="3s").close()


def _stopped(batch_id: str) -> tuple[bool, int]:
    import os

    from napari_sam2v.batch.interrupt import stop_event

    return stop_event(batch_id).is_set(), os.getpid()


def test_ctrl_c_in_a_local_worker_stops_its_videos_not_the_worker(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches the workers too: no traceback, their videos stop."""
    import os
    import signal

    from napari_sam2v.batch.runner import _connect

    with _connect(None, 1, 1) as (client, _):
        stopped, pid = client.submit(_stopped, "b1", pure=False).result(timeout=30)
        assert not stopped and pid != os.getpid()
        os.kill(pid, signal.SIGINT)
        time.sleep(0.5)
        # the same worker process, alive, with this batch (and any later one) stopped
        assert client.submit(_stopped, "b1", pure=False).result(timeout=30) == (True, pid)
        assert client.submit(_stopped, "b2", pure=False).result(timeout=30) == (True, pid)


def test_a_cancelled_batch_stops_its_videos_and_returns_its_report(tmp_path: Path) -> None:
    import threading

    for name in ("a", "b", "c"):
        write_video(tmp_path, name, n_frames=60)
    manifest = write_manifest(tmp_path, ["a.tif,a.json", "b.tif,b.json", "c.tif,c.json"])
    cancel = threading.Event()
    report = run_batch(
        manifest, tmp_path / "out", engine="classic", workers=1, cancel=cancel,
        on_outcome=lambda outcome, n, total: cancel.set(),
    )  # fmt: skip
    statuses = [v.status for v in report.outcomes]
    assert statuses.count("done") == 1 and statuses.count("failed") == 2
    errors = {v.error for v in report.outcomes if v.status == "failed"}
    assert errors <= {worker.STOPPED, worker.NOT_STARTED}, errors
    saved = json.loads((tmp_path / "out" / "batch_report.json").read_text())
    assert [v["status"] for v in saved["videos"]] == statuses
    again = run_batch(manifest, tmp_path / "out", engine="classic", workers=1)
    assert again.ok and [v.status for v in again.outcomes].count("skipped") == 1


def test_a_batch_cancelled_before_it_starts_starts_no_cluster(tmp_path: Path, monkeypatch) -> None:
    import threading

    from napari_sam2v.batch import runner

    monkeypatch.setattr(runner, "_connect", None)  # a cluster start would fail
    cancel = threading.Event()
    cancel.set()
    report = run_batch(_two_videos(tmp_path), tmp_path / "out", engine="classic", cancel=cancel)
    assert [(v.status, v.error) for v in report.outcomes] == [("failed", worker.NOT_STARTED)] * 2


def test_unknown_models_fail_before_the_cluster_starts(tmp_path: Path) -> None:
    write_video(tmp_path, "a", n_frames=3)
    manifest = write_manifest(tmp_path, ["a.tif,a.json,sam9-huge", "a.tif,a.json,w/none.pt"],
                              header="video,prompts,model")  # fmt: skip
    with pytest.raises(InputError) as info:
        run_batch(manifest, tmp_path / "out", engine="sam2")
    message = str(info.value)
    assert "row 2:" in message and "sam9-huge" in message
    assert f"row 3: model file or folder not found: {tmp_path.resolve() / 'w' / 'none.pt'}" in (
        message
    )
    assert not list((tmp_path / "out").glob("*/"))


def test_remeasure_needs_only_the_stores(tmp_path: Path) -> None:
    manifest, out = _two_videos(tmp_path), tmp_path / "out"
    assert run_batch(manifest, out, engine="classic", workers=1).ok
    for name in ("a.tif", "b.tif"):
        (tmp_path / name).unlink()
    with pytest.raises(InputError, match="does not exist"):
        read_manifest(manifest)
    report = run_batch(manifest, out, engine="classic", workers=1, remeasure=True)
    assert report.ok and all(o.measured_only for o in report.outcomes)


def test_a_second_batch_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    from napari_sam2v.errors import BatchError

    manifest, out = _two_videos(tmp_path), tmp_path / "out"
    out.mkdir()
    lock = out / ".napari-sam2v-batch.lock"
    # A live process (a sleeping child) holds the folder, as a running batch would.
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        owner = {"pid": holder.pid, "host": socket.gethostname(), "time": 0}
        lock.write_text(json.dumps(owner))
        with pytest.raises(BatchError, match=rf"the batch output folder {out} is being written "
                           rf"by process {holder.pid}.*another output folder"):  # fmt: skip
            run_batch(manifest, out, engine="classic", workers=1)
        assert not (out / "a").exists()
    finally:
        holder.kill()
        holder.wait(10)
    # Once that process is gone its lock is stale, and the batch runs.
    assert run_batch(manifest, out, engine="classic", workers=1).ok
    assert not lock.exists()


def test_a_closed_output_pipe_does_not_stop_the_batch_progress() -> None:
    """`napari-sam2v batch ... | head`: printing fails, the batch must go on."""
    code = (
        "import sys\n"
        "from napari_sam2v.batch.tasks import VideoOutcome\n"
        "from napari_sam2v.cli.batch import _print_outcome\n"
        "done = VideoOutcome(name='a', video='a.tif', row=2, status='done')\n"
        "for i in range(1, 2001):\n"
        "    _print_outcome(done, i, 2000)\n"
        "print('went on', file=sys.stderr)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    child.stdout.close()  # the reader is gone before the first line
    _, err = child.communicate(timeout=60)
    assert child.returncode == 0, err.decode()
    assert err.decode().strip() == "went on"
