"""SIGKILL ``napari-sam2v track`` at random frames; ``--resume`` loses nothing."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest

from napari_sam2v.store import open_result
from tests.reliability.cli_runs import (
    done_frames,
    run_cli,
    signal_after,
    start_paced,
    track_argv,
)
from tests.reliability.media import write_disk_npy

N_FRAMES = 24
PACE_S = 0.04


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, Path, np.ndarray]:
    """A 24-frame video, its prompts and the labels of an uninterrupted CLI run."""
    from tests.reliability.media import disk_prompts

    root = tmp_path_factory.mktemp("crash")
    write_disk_npy(root / "video.npy", N_FRAMES)
    disk_prompts().save(root / "prompts.json")
    reference = root / "reference.zarr"
    assert run_cli(track_argv(root / "video.npy", root / "prompts.json", reference)) == 0
    labels = np.asarray(open_result(reference).labels)
    assert labels.max() == 2
    return root / "video.npy", root / "prompts.json", labels


def _kill_and_resume(clip, out: Path, kill_after: int) -> None:
    video, prompts, reference = clip
    child = start_paced(track_argv(video, prompts, out), PACE_S)
    try:
        signal_after(child, out, kill_after, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    before = done_frames(out)
    if kill_after:  # the kill landed mid-run: some frames, not all, were finished
        assert kill_after <= before.sum() < N_FRAMES, (kill_after, int(before.sum()))
    kept = {}
    if before.size:
        partial = open_result(out)
        assert partial.status in ("created", "running")
        labels = partial.labels_array(writable=False)
        kept = {int(t): np.asarray(labels[int(t)]) for t in np.flatnonzero(before)}
    assert run_cli(track_argv(video, prompts, out, "--resume")) == 0
    resumed = open_result(out)
    assert resumed.complete and resumed.status == "complete"
    np.testing.assert_array_equal(np.asarray(resumed.labels), reference)
    for t, frame in kept.items():  # every frame finished before the kill is unchanged
        np.testing.assert_array_equal(frame, reference[t])


@pytest.mark.timeout(120)
def test_sigkill_at_ten_random_frames_then_resume_is_identical(clip, tmp_path):
    rng = np.random.default_rng(20261121)
    kills = sorted(int(k) for k in rng.choice(np.arange(1, N_FRAMES - 1), 10, replace=False))
    for i, kill_after in enumerate(kills):
        _kill_and_resume(clip, tmp_path / f"kill{i}.zarr", kill_after)


@pytest.mark.timeout(60)
def test_sigkill_before_the_first_frame_then_resume(clip, tmp_path):
    _kill_and_resume(clip, tmp_path / "early.zarr", 0)


@pytest.mark.soak
@pytest.mark.timeout(1800)
def test_sigkill_soak_every_frame_and_repeated_kills(clip, tmp_path):
    """Kill at every frame index, and kill the same store again and again while resuming."""
    for kill_after in range(N_FRAMES):
        _kill_and_resume(clip, tmp_path / f"every{kill_after}.zarr", kill_after)
    video, prompts, reference = clip
    out = tmp_path / "repeated.zarr"
    for step in range(1, N_FRAMES, 3):
        child = start_paced(track_argv(video, prompts, out, "--resume"), PACE_S)
        signal_after(child, out, step, signal.SIGKILL)
        child.wait(timeout=60)
    assert run_cli(track_argv(video, prompts, out, "--resume")) == 0
    np.testing.assert_array_equal(np.asarray(open_result(out).labels), reference)
