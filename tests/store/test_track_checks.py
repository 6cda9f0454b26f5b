"""``track()`` checks its input before it creates or replaces a store, and on resume."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_sam2v.errors import InputError, PromptError, StoreError
from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.prompts import Prompt
from napari_sam2v.store import open_result
from napari_sam2v.store.pipeline import ProgressInfo, track
from tests.reliability.media import tree_digest
from tests.store.fake_engine import FakeEngine


def _prompts(frame: int = 0) -> Prompts:
    return Prompts([], [Prompt(frame, 1, points=[[30, 30]]), Prompt(frame, 2, points=[[90, 70]])])


@pytest.fixture
def finished(tmp_path: Path, disk_video) -> Path:
    frames, _ = disk_video
    out = tmp_path / "done.zarr"
    assert track(frames, _prompts(), out, engine=FakeEngine()).complete
    return out


def test_a_two_channel_stack_without_a_channel_leaves_no_store(tmp_path, disk_video, finished):
    frames, truth = disk_video
    two = np.stack([frames, frames[:, ::-1]], axis=-1)
    out = tmp_path / "new.zarr"
    with pytest.raises(InputError, match="2 channels"):
        track(two, _prompts(), out, engine=FakeEngine())
    assert not out.exists()
    # The same mistake with overwrite leaves the finished store byte for byte.
    before = tree_digest(finished)
    with pytest.raises(InputError, match="2 channels"):
        track(two, _prompts(), finished, engine=FakeEngine(), overwrite=True)
    assert tree_digest(finished) == before
    # Fixing the mistake just works: no stale store blocks the second run.
    fixed = track(two, _prompts(), out, engine=FakeEngine(), channel=0)
    assert fixed.complete
    np.testing.assert_array_equal(np.asarray(fixed.labels), truth)


def test_nan_on_a_prompted_frame_leaves_no_store(tmp_path, disk_video, finished):
    frames, _ = disk_video
    bad = frames.astype(np.float32)
    bad[0, 5, 5] = np.nan
    before = tree_digest(finished)
    with pytest.raises(InputError, match="frame 0 contains NaN"):
        track(bad, _prompts(), finished, engine=FakeEngine(), overwrite=True)
    assert tree_digest(finished) == before


@pytest.mark.parametrize(
    ("direction", "start", "message"),
    [
        ("backward", 9, r"nothing to follow backward from frame 9: the last prompt is on frame 4"),
        ("forward", 2, r"nothing to follow forward from frame 2: the first prompt is on frame 4"),
    ],
)
def test_a_start_with_no_prompt_behind_it_is_refused(
    tmp_path, disk_video, direction, start, message
):
    frames, _ = disk_video
    out = tmp_path / "r.zarr"
    with pytest.raises(PromptError, match=message):
        track(frames, _prompts(4), out, engine=FakeEngine(), direction=direction, start=start)
    assert not out.exists()
    # From the prompted frame, or both ways, the same run is fine.
    both = track(frames, _prompts(4), out, engine=FakeEngine(), direction="both", start=start)
    assert both.complete


def test_prompts_after_the_end_frame_are_named_as_such(tmp_path, disk_video):
    frames, _ = disk_video
    out = tmp_path / "r.zarr"
    with pytest.raises(PromptError, match=r"the prompts begin on frame 5, outside .* \(0\.\.3\)"):
        track(frames, _prompts(5), out, engine=FakeEngine(), end=3)
    assert not out.exists()


def _partial(frames, out: Path, **kwargs) -> None:
    stop = threading.Event()

    def cancel_after_three(info: ProgressInfo) -> None:
        if info.done == 3:
            stop.set()

    result = track(
        frames, _prompts(), out, engine=FakeEngine(), progress=cancel_after_three, cancel=stop,
        **kwargs,
    )  # fmt: skip
    assert not result.complete


def test_resume_refuses_another_channel(tmp_path, disk_video):
    frames, truth = disk_video
    two = np.stack([frames, frames[:, ::-1]], axis=-1)
    out = tmp_path / "r.zarr"
    _partial(two, out, channel=0)
    before = tree_digest(out)
    with pytest.raises(StoreError, match="cannot resume with channel 1; .* tracked channel 0"):
        track(two, _prompts(), out, engine=FakeEngine(), channel=1, resume=True)
    assert tree_digest(out) == before
    done = track(two, _prompts(), out, engine=FakeEngine(), channel=0, resume=True)
    assert done.complete
    np.testing.assert_array_equal(np.asarray(done.labels), truth)


def test_resume_refuses_another_file_but_follows_a_moved_one(tmp_path, disk_video):
    frames, truth = disk_video
    first, other = tmp_path / "first.tif", tmp_path / "other.tif"
    tifffile.imwrite(first, frames)
    tifffile.imwrite(other, frames[:, ::-1].copy())
    out = tmp_path / "r.zarr"
    _partial(str(first), out)
    with pytest.raises(StoreError, match="not the file the interrupted run tracked"):
        track(str(other), _prompts(), out, engine=FakeEngine(), resume=True)
    moved = tmp_path / "moved" / "first.tif"
    moved.parent.mkdir()
    first.rename(moved)
    done = track(str(moved), _prompts(), out, engine=FakeEngine(), resume=True)
    assert done.complete
    np.testing.assert_array_equal(np.asarray(open_result(out).labels), truth)


class _OtherEngine(FakeEngine):
    """The fake engine with other provenance: another model, or other settings."""

    def __init__(self, **info: object) -> None:
        super().__init__()
        self._changes = info

    @property
    def info(self):
        return replace(super().info, **self._changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model_hash": "f" * 8}, "with model 'threshold'; the interrupted run used 'threshold'"),
        ({"model": "other", "model_hash": ""}, "with model 'other'"),
        ({"settings": {"threshold": 0.7}}, r"other engine settings \(threshold: 0.5 then, 0.7 now"),
        ({"settings": {"threshold": 0.5, "precision": "bf16"}}, "precision: None then"),
    ],
)
def test_resume_refuses_other_weights_or_settings(tmp_path, disk_video, changes, message):
    frames, truth = disk_video
    out = tmp_path / "r.zarr"
    _partial(frames, out)
    before = tree_digest(out)
    with pytest.raises(StoreError, match=message):
        track(frames, _prompts(), out, engine=_OtherEngine(**changes), resume=True)
    assert tree_digest(out) == before
    assert track(frames, _prompts(), out, engine=FakeEngine(), resume=True).complete


def test_resume_accepts_other_runtime_settings(tmp_path, disk_video):
    frames, truth = disk_video
    out = tmp_path / "r.zarr"
    _partial(frames, out)
    faster = {"threshold": 0.5, "num_threads": 8, "cache_frames": 64}
    done = track(frames, _prompts(), out, engine=_OtherEngine(settings=faster), resume=True)
    assert done.complete
    np.testing.assert_array_equal(np.asarray(done.labels), truth)
