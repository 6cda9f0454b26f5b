"""Crash safety: SIGKILL a real ``track`` subprocess, then resume to identical labels."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.prompts import Prompt
from napari_sam2v.store import open_result
from napari_sam2v.store.pipeline import track
from tests.conftest import make_disk_video
from tests.store.fake_engine import FakeEngine

ROOT = Path(__file__).resolve().parents[2]
N_FRAMES = 16

CHILD = """
import sys
import numpy as np
from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.store.pipeline import track
from tests.store.fake_engine import FakeEngine
frames = np.load(sys.argv[1])
track(frames, Prompts.load(sys.argv[2]), sys.argv[3], engine=FakeEngine(sleep=0.05),
      direction=sys.argv[4], resume=True)
"""


def _prompts() -> Prompts:
    return Prompts([], [Prompt(6, 1, points=[[48, 30]]), Prompt(6, 2, points=[[78, 70]])])


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _kill_at(tmp_path: Path, out: Path, frames_before_kill: int, direction: str) -> None:
    frames, _ = make_disk_video(N_FRAMES)
    np.save(tmp_path / "frames.npy", frames)
    _prompts().save(tmp_path / "prompts.json")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            str(tmp_path / "frames.npy"),
            str(tmp_path / "prompts.json"),
            str(out),
            direction,
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
    )
    journal = out / "sam2v" / "progress.jsonl"
    deadline = time.monotonic() + 60
    try:
        while _lines(journal) < frames_before_kill:
            if child.poll() is not None:
                raise AssertionError(f"child ended early: {child.stderr.read().decode()}")
            assert time.monotonic() < deadline, "the child never reached the kill point"
            time.sleep(0.005)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize(("kill_after", "direction"), [(0, "forward"), (3, "forward"), (7, "both")])
def test_sigkill_then_resume_gives_identical_labels(tmp_path, kill_after, direction):
    frames, _ = make_disk_video(N_FRAMES)
    reference = track(
        frames, _prompts(), tmp_path / "reference.zarr", engine=FakeEngine(), direction=direction
    )
    expected = np.asarray(reference.labels)
    out = tmp_path / "killed.zarr"
    _kill_at(tmp_path, out, kill_after, direction)
    before = None
    if (out / "sam2v" / "state.json").exists():
        partial = open_result(out)
        assert partial.status == "running"  # the killed run never finished
        before = partial.frames_done.copy()
        kept = np.asarray(partial.labels)[before]
        assert (kept == expected[before]).all()  # every frame marked done is correct
    resumed = track(frames, _prompts(), out, engine=FakeEngine(), direction=direction, resume=True)
    assert resumed.frames_done[6:].all()
    # forward from frame 6 never visits frames 0..5: the store says so
    assert resumed.status == ("complete" if direction == "both" else "partial")
    np.testing.assert_array_equal(np.asarray(resumed.labels), expected)
    if before is not None:
        assert resumed.frames_done[before].all()  # no finished frame lost
    scores = resumed.scores.sort_values(["frame", "object_id"]).reset_index(drop=True)
    ref_scores = reference.scores.sort_values(["frame", "object_id"]).reset_index(drop=True)
    assert scores.equals(ref_scores)


def test_torn_journal_line_is_ignored(tmp_path):
    frames, truth = make_disk_video(N_FRAMES)
    prompts = Prompts([], [Prompt(0, 1, points=[[30, 30]]), Prompt(0, 2, points=[[90, 70]])])
    out = tmp_path / "t.zarr"
    cancel_after = 4
    import threading

    cancel = threading.Event()
    track(
        frames,
        prompts,
        out,
        engine=FakeEngine(),
        cancel=cancel,
        progress=lambda info: cancel.set() if info.done == cancel_after else None,
    )
    journal = out / "sam2v" / "progress.jsonl"
    with open(journal, "a") as fh:
        fh.write('deadbeef {"frame":9,"objects":[1,2],"sco')  # torn by a crash
    assert open_result(out).frames_done.sum() == cancel_after
    result = track(frames, prompts, out, engine=FakeEngine(), resume=True)
    np.testing.assert_array_equal(np.asarray(result.labels), truth[:N_FRAMES])
    assert result.complete


def test_classic_engine_cancel_and_resume_is_identical(tmp_path):
    pytest.importorskip("napari_sam2v.engines.classic")
    import threading

    frames, truth = make_disk_video(10)
    prompts = Prompts([], [Prompt(0, 1, points=[[30, 30]]), Prompt(0, 2, points=[[90, 70]])])
    reference = np.asarray(track(frames, prompts, tmp_path / "ref.zarr", engine="classic").labels)
    assert ((reference == 1) & (truth == 1)).sum() / ((reference == 1) | (truth == 1)).sum() > 0.9
    cancel = threading.Event()
    out = tmp_path / "c.zarr"
    partial = track(
        frames,
        prompts,
        out,
        engine="classic",
        cancel=cancel,
        progress=lambda info: cancel.set() if info.done == 4 else None,
    )
    assert partial.status == "cancelled" and partial.frames_done.sum() == 4
    resumed = track(frames, prompts, out, engine="classic", resume=True)
    np.testing.assert_array_equal(np.asarray(resumed.labels), reference)
    assert resumed.metadata["engine"]["engine"] == "classic"


@pytest.mark.slow
def test_sigkill_at_ten_random_frames(tmp_path):
    frames, _ = make_disk_video(N_FRAMES)
    expected = np.asarray(
        track(
            frames, _prompts(), tmp_path / "ref.zarr", engine=FakeEngine(), direction="both"
        ).labels
    )
    rng = np.random.default_rng(2024)
    for i, kill_after in enumerate(rng.integers(0, N_FRAMES, 10)):
        out = tmp_path / f"k{i}.zarr"
        _kill_at(tmp_path, out, int(kill_after), "both")
        done_before = (
            open_result(out).frames_done.copy()
            if (out / "sam2v" / "state.json").exists()
            else np.zeros(N_FRAMES, bool)
        )
        resumed = track(frames, _prompts(), out, engine=FakeEngine(), direction="both", resume=True)
        assert resumed.complete and resumed.frames_done[done_before].all()
        np.testing.assert_array_equal(np.asarray(resumed.labels), expected)
