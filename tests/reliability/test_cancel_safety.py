"""Cancel at random points (Python ``cancel`` event, Ctrl-C on the CLI): nothing lost."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import numpy as np
import pytest

from napari_sam2v.store import open_result
from napari_sam2v.store.pipeline import ProgressInfo, track
from tests.reliability.cli_runs import (
    done_frames,
    run_cli,
    signal_after,
    start_paced,
    track_argv,
)
from tests.reliability.media import disk_prompts, write_disk_npy

N_FRAMES = 20
PACE_S = 0.04

# The widget's Cancel button is covered by tests/qt/test_reef_workflow.py
# (random-tiny preview, cancel, resume, refine, undo).


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[np.ndarray, Path, Path, dict[str, np.ndarray]]:
    """Frames, prompt file, its folder and the uninterrupted labels per direction."""
    root = tmp_path_factory.mktemp("cancel")
    frames = write_disk_npy(root / "video.npy", N_FRAMES)
    prompts = disk_prompts()
    prompts.prompts[1] = type(prompts.prompts[1])(8, 2, points=[[74, 70]])  # frame 8
    prompts.save(root / "prompts.json")
    reference = {
        direction: np.asarray(
            track(
                frames,
                prompts,
                root / f"ref-{direction}.zarr",
                engine="classic",
                direction=direction,
            ).labels
        )
        for direction in ("forward", "both")
    }
    return frames, root / "prompts.json", root, reference


def _check_consistent(out: Path, reference: np.ndarray) -> np.ndarray:
    """The cancelled store: status, journal and labels of the finished frames agree."""
    partial = open_result(out)
    assert partial.status == "cancelled"
    assert partial.metadata["state"]["frames_missing"] == int((~partial.frames_done).sum())
    labels = partial.labels_array(writable=False)
    for t in np.flatnonzero(partial.frames_done):
        np.testing.assert_array_equal(np.asarray(labels[int(t)]), reference[int(t)])
    for t in np.flatnonzero(~partial.frames_done):  # unfinished frames hold nothing
        assert not np.asarray(labels[int(t)]).any()
    return partial.frames_done.copy()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("direction", ["forward", "both"])
def test_python_cancel_at_random_frames_then_resume(clip, tmp_path, direction):
    frames, prompts, _, reference = clip
    rng = np.random.default_rng(7)
    for i, stop_at in enumerate(rng.integers(1, N_FRAMES - 1, 4)):
        cancel = threading.Event()

        def progress(
            info: ProgressInfo, stop_at: int = int(stop_at), cancel: threading.Event = cancel
        ) -> None:
            if info.done == stop_at:
                cancel.set()

        out = tmp_path / f"{direction}{i}.zarr"
        track(
            frames,
            prompts,
            out,
            engine="classic",
            direction=direction,
            cancel=cancel,
            progress=progress,
        )
        done = _check_consistent(out, reference[direction])
        assert done.sum() == stop_at
        resumed = track(frames, prompts, out, engine="classic", direction=direction, resume=True)
        assert resumed.complete and resumed.status == "complete"
        np.testing.assert_array_equal(np.asarray(resumed.labels), reference[direction])


@pytest.mark.timeout(120)
def test_python_cancel_from_another_thread_at_random_times(clip, tmp_path):
    """A GUI-like cancel: another thread sets the event while frames are in flight."""
    frames, prompts, _, reference = clip
    rng = np.random.default_rng(11)
    from napari_sam2v.engines.classic.engine import ClassicEngine
    from tests.reliability.paced_cli import paced

    original = ClassicEngine.propagate
    ClassicEngine.propagate = paced(original, PACE_S)  # type: ignore[method-assign]
    try:
        for i, delay in enumerate(rng.uniform(0.05, 0.6, 3)):
            cancel = threading.Event()
            timer = threading.Timer(float(delay), cancel.set)
            timer.start()
            out = tmp_path / f"t{i}.zarr"
            try:
                track(frames, prompts, out, engine="classic", cancel=cancel)
            finally:
                timer.cancel()
            if open_result(out).status == "cancelled":
                _check_consistent(out, reference["forward"])
            resumed = track(frames, prompts, out, engine="classic", resume=True)
            np.testing.assert_array_equal(np.asarray(resumed.labels), reference["forward"])
    finally:
        ClassicEngine.propagate = original  # type: ignore[method-assign]


@pytest.mark.timeout(120)
def test_ctrl_c_on_the_cli_at_random_frames_then_resume(clip, tmp_path):
    _, prompts, root, reference = clip
    video = root / "video.npy"
    rng = np.random.default_rng(3)
    for i, stop_at in enumerate(sorted(rng.choice(np.arange(1, N_FRAMES - 2), 3, replace=False))):
        out = tmp_path / f"cli{i}.zarr"
        child = start_paced(track_argv(video, prompts, out), PACE_S)
        signal_after(child, out, int(stop_at), signal.SIGINT)
        _, err = child.communicate(timeout=60)
        message = err.decode()
        assert child.returncode == 130, message
        assert "stopping after the current frame" in message
        done = _check_consistent(out, reference["forward"])
        assert stop_at <= done.sum() < N_FRAMES
        assert f"interrupted: {int(done.sum())} of {N_FRAMES} frames are saved in" in message
        assert "--resume" in message
        assert run_cli(track_argv(video, prompts, out, "--resume")) == 0
        np.testing.assert_array_equal(np.asarray(open_result(out).labels), reference["forward"])


@pytest.mark.timeout(120)
def test_second_ctrl_c_aborts_and_the_store_still_resumes(clip, tmp_path):
    _, prompts, root, reference = clip
    video = root / "video.npy"
    out = tmp_path / "abort.zarr"
    child = start_paced(track_argv(video, prompts, out), PACE_S * 5)
    signal_after(child, out, 2, signal.SIGINT)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err.decode()
    assert "Traceback" not in err.decode()
    before = done_frames(out)
    assert 2 <= before.sum() < N_FRAMES
    assert open_result(out).status in ("interrupted", "cancelled")
    assert run_cli(track_argv(video, prompts, out, "--resume")) == 0
    np.testing.assert_array_equal(np.asarray(open_result(out).labels), reference["forward"])
