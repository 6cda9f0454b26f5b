"""The Qt-free TrackingSession: objects, prompts, undo/redo, propagation, cancel, resume."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from napari_sam2v.engines import Direction, Engine, EngineInfo, FrameResult, ObjectScore
from napari_sam2v.engines.base import propagation_order
from napari_sam2v.errors import EngineError, InputError, PromptError
from napari_sam2v.prompts import Prompt
from napari_sam2v.session import FramePrompt, PropagationProgress, TrackingSession
from napari_sam2v.types import default_color


class DiskEngine(Engine):
    """A deterministic engine: a disk of radius 5 around the mean positive click.

    Boxes fill the box, masks are returned as given; propagation copies the last
    prompted mask of each object. It records every prompt it receives.
    """

    name = "fake"

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Prompt] = []
        self.prefetched: list[int] = []
        self.closed = False

    def _on_video_set(self) -> None:
        self._prompts: dict[tuple[int, int], Prompt] = {}

    @property
    def object_ids(self) -> list[int]:
        return sorted({oid for _, oid in getattr(self, "_prompts", {})})

    def _mask(self, prompt: Prompt) -> np.ndarray:
        h, w = self.frame_shape
        if prompt.mask is not None:
            return prompt.mask.copy()
        mask = np.zeros((h, w), bool)
        if prompt.box is not None:
            x0, y0, x1, y1 = prompt.box.astype(int)
            mask[y0:y1, x0:x1] = True
        if prompt.points is not None and (prompt.labels == 1).any():
            x, y = prompt.points[prompt.labels == 1].mean(axis=0)
            yy, xx = np.mgrid[:h, :w]
            mask |= (yy - y) ** 2 + (xx - x) ** 2 <= 25
        return mask

    def _result(self, frame: int) -> FrameResult:
        masks, scores = {}, {}
        for oid in self.object_ids:
            keys = sorted(f for f, o in self._prompts if o == oid)
            before = [f for f in keys if f <= frame] or keys
            masks[oid] = self._mask(self._prompts[(before[-1], oid)])
            scores[oid] = ObjectScore(5.0 if frame < 9 else -2.0, 0.9)
        return FrameResult(frame, masks, scores)

    def add_prompt(self, prompt: Prompt) -> FrameResult:
        self.check_frame(prompt.frame)
        self.check_prompt(prompt)
        self.received.append(prompt)
        self._prompts[(prompt.frame, prompt.object_id)] = prompt
        return self._result(prompt.frame)

    def remove_object(self, object_id: int) -> None:
        self.check_object(object_id)
        self._prompts = {k: v for k, v in self._prompts.items() if k[1] != object_id}

    def clear_frame(self, frame: int, object_id: int | None = None) -> None:
        self._prompts = {
            k: v
            for k, v in self._prompts.items()
            if not (k[0] == frame and object_id in (None, k[1]))
        }

    def prefetch(self, frame: int) -> None:
        self.prefetched.append(self.check_frame(frame))

    def propagate(
        self, *, start=None, direction="forward", frame_range=None, cancel=None
    ) -> Iterator[FrameResult]:
        d = Direction.parse(direction)
        first = self.resolve_start(start, d, sorted({f for f, _ in self._prompts}))
        for frame, _ in propagation_order(self.n_frames, first, d, frame_range):
            if cancel is not None and cancel.is_set():
                return
            yield self._result(frame)

    def reset(self) -> None:
        self._prompts = {}

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(engine="fake")

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def session(disk_video) -> TrackingSession:
    frames, _ = disk_video
    return TrackingSession(frames, engine_factory=DiskEngine)


def test_engine_is_lazy_and_replays_prompts(session: TrackingSession) -> None:
    assert not session.engine_loaded
    session.add_click(0, 30, 30)
    first = session.engine
    assert session.engine_loaded and len(first.received) == 1
    session.configure_engine("classic")
    assert first.closed and not session.engine_loaded
    session._factory = DiskEngine  # keep the test engine after reconfiguring
    second = session.engine
    assert [p.frame for p in second.received] == [0]
    assert session.load_engine().engine == "fake"


def test_objects_add_rename_recolor_delete(session: TrackingSession) -> None:
    fish = session.add_object("parrotfish")
    crab = session.add_object()
    assert [o.id for o in session.objects] == [1, 2]
    assert session.current_object == 2 and crab.name == "object 2"
    assert session.rename_object(1, "  ").name == "object 1"
    assert session.rename_object(1, "=cmd").name == "=cmd"  # free text; exports escape it
    assert session.recolor_object(fish.id, "#112233").color == "#112233"
    with pytest.raises(PromptError, match="colour"):
        session.recolor_object(1, "red")
    session.add_click(2, 40, 40, object_id=2)
    session.delete_object(2)
    assert [o.id for o in session.objects] == [1]
    assert session.current_object == 1
    assert session.engine.object_ids == [] and len(session.prompts) == 0
    with pytest.raises(EngineError, match="unknown object id 5"):
        session.rename_object(5, "x")


def test_clicks_accumulate_and_return_the_frame_masks(session: TrackingSession) -> None:
    result = session.add_click(3, 30, 30)
    assert result.frame == 3 and result.masks[1][30, 30]
    session.add_click(3, 5, 5, positive=False)
    entry = session.frame_prompt(3, 1)
    assert entry == FramePrompt(3, 1, ((30.0, 30.0), (5.0, 5.0)), (1, 0))
    sent = session.engine.received[-1]
    assert sent.labels.tolist() == [1, 0]
    assert session.compose(result).dtype == np.uint16


def test_bad_click_changes_nothing(session: TrackingSession) -> None:
    session.add_click(0, 30, 30)
    with pytest.raises(PromptError, match="outside"):
        session.add_click(0, 500, 30)
    with pytest.raises(PromptError, match="beyond"):
        session.add_click(40, 30, 30)
    assert session.frame_prompt(0, 1).points == ((30.0, 30.0),)
    assert session.frame_prompt(40, 1) is None
    assert session.prompts.frames() == [0]


def test_undo_redo_restores_engine_state(session: TrackingSession) -> None:
    session.add_click(0, 30, 30)
    session.add_click(0, 35, 30)
    session.set_box(4, (10, 10, 20, 20))
    assert session.can_undo and not session.can_redo
    edit, result = session.undo()
    assert edit.description == "box on frame 4" and result is None
    assert session.frame_prompt(4, 1) is None and session.prompts.frames() == [0]
    edit, result = session.undo()
    assert session.frame_prompt(0, 1).points == ((30.0, 30.0),)
    assert session.engine.received[-1].points.tolist() == [[30.0, 30.0]]
    session.redo()
    session.redo()
    assert session.frame_prompt(4, 1).box == (10.0, 10.0, 20.0, 20.0)
    with pytest.raises(EngineError, match="nothing to redo"):
        session.redo()
    session.undo()
    session.add_click(6, 30, 30)  # a new action drops the redo branch
    assert not session.can_redo


def test_clicks_can_be_moved_and_deleted_undoably(session: TrackingSession) -> None:
    session.add_click(3, 30, 30)
    session.add_click(3, 5, 5, positive=False)
    session.set_box(3, (20, 20, 40, 40))
    # delete the background click: the foreground click and the box stay
    result = session.set_clicks(3, [(30, 30)], [1])
    entry = session.frame_prompt(3, 1)
    assert entry.points == ((30.0, 30.0),) and entry.labels == (1,)
    assert entry.box == (20.0, 20.0, 40.0, 40.0)
    assert result.masks[1][30, 30]
    assert session.engine.received[-1].labels.tolist() == [1]
    # move the click: the engine gets the new position
    session.set_clicks(3, [(60, 50)], [1])
    assert session.engine.received[-1].points.tolist() == [[60.0, 50.0]]
    # the box goes, then the last click: the prompt on that frame is gone
    session.remove_box(3)
    assert session.frame_prompt(3, 1).box is None
    session.set_clicks(3, [], [])
    assert session.frame_prompt(3, 1) is None
    assert session.prompts.frames() == []
    # every step is undoable
    for description in ("edited clicks", "removed box", "edited clicks", "edited clicks"):
        edit, _ = session.undo()
        assert edit.description.startswith(description)
    assert session.frame_prompt(3, 1).points == ((30.0, 30.0), (5.0, 5.0))


def test_bad_prompt_edits_change_nothing(session: TrackingSession) -> None:
    session.add_click(2, 30, 30)
    with pytest.raises(PromptError, match="2 clicks but 1 labels"):
        session.set_clicks(2, [(30, 30), (40, 40)], [1])
    with pytest.raises(PromptError, match="outside"):
        session.set_clicks(2, [(500, 30)], [1])
    with pytest.raises(PromptError, match="no prompt on frame 7"):
        session.remove_box(7)
    assert session.frame_prompt(2, 1).points == ((30.0, 30.0),)
    assert session.frame_prompt(7, 1) is None
    assert len(session._undo) == 1


def test_prompt_edits_never_add_an_object(disk_video) -> None:
    fresh = TrackingSession(disk_video[0], engine_factory=DiskEngine)
    for edit in (lambda: fresh.remove_box(0), lambda: fresh.set_clicks(0, [], [])):
        with pytest.raises(PromptError, match="no object is selected"):
            edit()
    assert fresh.objects == [] and not fresh.can_undo


def test_clear_frame_is_undoable_and_keeps_other_objects(session: TrackingSession) -> None:
    session.add_click(2, 30, 30, object_id=session.add_object().id)
    session.add_click(2, 90, 70, object_id=session.add_object().id)
    result = session.clear_frame(2, object_id=2)
    assert sorted(result.masks) == [1]
    session.undo()
    assert session.frame_prompt(2, 2) is not None
    assert session.engine.object_ids == [1, 2]


def test_mask_prompt_replaces_clicks(session: TrackingSession, disk_video) -> None:
    _, truth = disk_video
    session.add_click(1, 30, 30)
    result = session.set_mask(1, truth[1] == 1)
    np.testing.assert_array_equal(result.masks[1], truth[1] == 1)
    assert session.frame_prompt(1, 1).points == ()
    session.undo()
    assert session.frame_prompt(1, 1).points == ((30.0, 30.0),)


def test_propagate_reports_progress_and_warnings(session: TrackingSession) -> None:
    session.add_click(0, 30, 30)
    seen: list[PropagationProgress] = []
    summary = session.propagate(progress=seen.append, direction="forward")
    assert summary.frames == tuple(range(12)) and not summary.cancelled
    assert [p.done for p in seen] == list(range(1, 13)) and seen[-1].total == 12
    assert seen[-1].fraction == 1.0 and seen[-1].fps > 0
    low = [w for w in session.warnings() if w.kind == "low confidence"]
    assert [w.frame for w in low] == [9, 10, 11]
    assert low[0].message == "low confidence (score 0.12)"  # the dock adds frame and name
    assert not session.can_resume


def test_cancel_then_resume_visits_each_frame_once(session: TrackingSession) -> None:
    session.add_click(5, 30, 30)
    cancel = threading.Event()
    frames = []
    for info in session.iter_propagate(direction="both", cancel=cancel):
        frames.append(info.frame)
        if len(frames) == 3:
            cancel.set()
    assert frames == [5, 6, 7] and session.can_resume
    rest = session.propagate(resume=True)
    assert rest.frames == (8, 9, 10, 11, 4, 3, 2, 1, 0)
    assert sorted(frames + list(rest.frames)) == list(range(12))
    with pytest.raises(EngineError, match="nothing to resume"):
        session.propagate(resume=True)


def test_prompt_change_invalidates_resume(session: TrackingSession) -> None:
    session.add_click(0, 30, 30)
    cancel = threading.Event()
    for _ in session.iter_propagate(cancel=cancel):
        cancel.set()
    assert session.can_resume
    session.add_click(4, 40, 30)  # refine
    assert not session.can_resume
    summary = session.propagate(start=4, frame_range=(4, 7))
    assert summary.frames == (4, 5, 6, 7)


def test_propagate_errors(session: TrackingSession) -> None:
    with pytest.raises(EngineError, match="add a prompt"):
        session.propagate()
    session.add_click(3, 30, 30)
    with pytest.raises(EngineError, match="outside the frame range"):
        session.propagate(start=3, frame_range=(5, 8))
    with pytest.raises(EngineError, match="unknown direction"):
        session.propagate(direction="sideways")


def test_prefetch_goes_to_the_engine(session: TrackingSession) -> None:
    session.prefetch(7)
    assert session.engine.prefetched == [7]
    with pytest.raises(PromptError, match="beyond"):
        session.prefetch(99)


def test_frames_must_be_a_video() -> None:
    with pytest.raises(EngineError, match="axes"):
        TrackingSession(np.zeros((32, 32)))


def test_frames_too_small_for_the_engines_are_refused_at_once() -> None:
    """Before a store is made for them (the dock made one, then refused every click)."""
    with pytest.raises(InputError, match=r"frames of 7x6 pixels are too small \(min 8x8\)"):
        TrackingSession(np.zeros((4, 6, 7), np.uint8), engine="classic")


# -- the result store binding -------------------------------------------------------------
@pytest.fixture
def stored(session: TrackingSession, tmp_path) -> TrackingSession:
    session.create_store(tmp_path / "clip.zarr")
    yield session
    session.close()


def test_preview_and_propagation_reach_the_store(stored: TrackingSession, tmp_path) -> None:
    from napari_sam2v.store import open_result

    stored.add_click(2, 30, 30)
    labels = stored.store.labels
    assert labels[2][30, 30] == 1 and labels[3].max() == 0
    assert not stored.store.frames_done.any()  # a preview is not a finished frame
    stored.propagate(start=2, frame_range=(2, 5))
    result = open_result(tmp_path / "clip.zarr")
    assert result.frames_done.nonzero()[0].tolist() == [2, 3, 4, 5]
    assert np.asarray(result.labels[5])[30, 30] == 1
    assert result.scores["frame"].tolist() == [2, 3, 4, 5]


def test_cancelled_frames_stay_on_disk_and_resume_finishes(stored: TrackingSession) -> None:
    stored.add_click(0, 30, 30)
    cancel = threading.Event()
    for info in stored.iter_propagate(cancel=cancel):
        if info.done == 4:
            cancel.set()
    assert stored.store.frames_done.sum() == 4
    assert stored.store.frames_done[:4].all()
    stored.propagate(resume=True)
    assert stored.store.frames_done.all()


def test_undo_and_delete_update_the_labels(stored: TrackingSession) -> None:
    a = stored.add_object("a").id
    stored.add_click(1, 30, 30, object_id=a)
    b = stored.add_object("b").id
    stored.add_click(1, 90, 70, object_id=b)
    labels = stored.store.labels
    assert set(np.unique(labels[1])) == {0, a, b}
    stored.undo()
    assert set(np.unique(labels[1])) == {0, a}
    stored.redo()
    stored.delete_object(a)
    assert set(np.unique(labels[1])) == {0, b}


def test_mask_prompt_from_painted_labels(stored: TrackingSession) -> None:
    oid = stored.add_object().id
    with pytest.raises(PromptError, match="no pixels on frame 3"):
        stored.mask_from_labels(3)
    painted = np.zeros(stored.frame_shape, np.uint16)
    painted[20:40, 25:45] = oid
    stored.store.labels[3] = painted  # what a napari paint stroke does
    result = stored.mask_from_labels(3)
    np.testing.assert_array_equal(result.masks[oid], painted == oid)
    assert stored.frame_prompt(3, oid).mask is not None


def test_save_and_reopen_restores_the_session(session: TrackingSession, tmp_path) -> None:
    path = tmp_path / "reopen.zarr"
    session.create_store(path)
    fish = session.add_object("=parrotfish")
    session.recolor_object(fish.id, "#123456")
    session.add_click(0, 30, 30, object_id=fish.id)
    session.set_box(4, (60, 50, 100, 80), object_id=session.add_object("crab").id)
    session.propagate(frame_range=(0, 3))
    session.close()
    frames = session.frames
    again = TrackingSession.from_store(path, frames=frames, engine_factory=DiskEngine)
    try:
        assert [(o.name, o.color) for o in again.objects] == [
            ("=parrotfish", "#123456"),
            ("crab", default_color(2)),
        ]
        assert again.frame_prompt(0, 1).points == ((30.0, 30.0),)
        assert again.frame_prompt(4, 2).box == (60.0, 50.0, 100.0, 80.0)
        assert again.store.frames_done[:4].all()
        assert not again.can_undo
        again.add_click(6, 40, 30, object_id=1)  # work continues
        assert again.engine.object_ids == [1, 2]
    finally:
        again.close()


def test_set_calibration_rescales_the_bound_store_and_survives_a_save(
    session: TrackingSession, tmp_path
) -> None:
    from napari_sam2v.session import bound_session
    from napari_sam2v.store import open_result
    from napari_sam2v.types import Calibration

    microns = Calibration(pixel_size=0.65, unit="um", frame_interval=10.0, time_unit="min")
    assert session.set_calibration(microns) == Calibration()  # unbound: the session only
    assert session.calibration == microns
    path = tmp_path / "cal.zarr"
    assert bound_session(path) is None
    session.create_store(path)
    assert bound_session(path) is session  # the Results dock finds the holder here
    halved = Calibration(pixel_size=0.325, unit="um", frame_interval=10.0, time_unit="min")
    assert session.set_calibration(halved) == microns
    session.add_object("cell")  # saves the session: the new calibration must stay
    assert open_result(path).calibration == halved
    assert open_result(path).metadata["calibration_history"][-1]["calibration"] == (
        microns.to_dict()
    )
    session.close()
    assert bound_session(path) is None
    again = TrackingSession.from_store(path, frames=session.frames, engine_factory=DiskEngine)
    try:
        assert again.calibration == halved and bound_session(path) is again
    finally:
        again.close()


def test_store_errors_are_clear(session: TrackingSession, tmp_path, disk_video) -> None:
    from napari_sam2v.errors import StoreError, StoreLockedError

    path = tmp_path / "busy.zarr"
    session.create_store(path)
    with pytest.raises(StoreError, match="already holds a result store"):
        TrackingSession(disk_video[0], engine_factory=DiskEngine).create_store(path)
    with pytest.raises(StoreLockedError):
        TrackingSession.from_store(path, frames=disk_video[0])
    session.close()
    with pytest.raises(StoreError, match="shape"):
        TrackingSession.from_store(path, frames=disk_video[0][:5])
    with pytest.raises(StoreError, match="no result store"):
        TrackingSession.from_store(tmp_path / "missing.zarr")
    # the store itself is intact after the failed attempts
    from napari_sam2v.store import open_result

    assert open_result(path).labels.shape == disk_video[0].shape


def test_import_prompts_from_a_file(session: TrackingSession, tmp_path) -> None:
    from napari_sam2v.io.prompt_files import Prompts
    from napari_sam2v.types import ObjectInfo

    path = tmp_path / "clicks.json"
    Prompts(
        objects=[ObjectInfo(1, "cell a", "#ff0000"), ObjectInfo(2, "cell b")],
        prompts=[
            Prompt(frame=0, object_id=1, points=[[30, 30]]),
            Prompt(frame=3, object_id=2, box=[60, 50, 100, 80]),
        ],
    ).save(path)
    results = session.import_prompts(Prompts.load(path))
    assert sorted(results) == [0, 3]
    assert [o.name for o in session.objects] == ["cell a", "cell b"]
    assert session.engine.object_ids == [1, 2]
    session.undo()
    assert session.engine.object_ids == [1]
    bad = Prompts(prompts=[Prompt(frame=50, object_id=3, points=[[1, 1]])])
    with pytest.raises(PromptError, match="beyond"):
        session.import_prompts(bad)
    assert [o.id for o in session.objects] == [1, 2]


@pytest.mark.parametrize("stop_after", [1, 5, 11])
def test_cancel_anywhere_then_resume_equals_uninterrupted(
    disk_video, tmp_path, stop_after: int
) -> None:
    from napari_sam2v.store import open_result

    frames, _ = disk_video

    def run(path, stop: int | None) -> np.ndarray:
        session = TrackingSession(frames, engine_factory=DiskEngine)
        session.create_store(path)
        session.add_click(6, 48, 30)
        session.add_click(6, 78, 70, object_id=session.add_object().id)
        cancel = threading.Event()
        for info in session.iter_propagate(direction="both", cancel=cancel):
            if stop is not None and info.done == stop:
                cancel.set()
        if stop is not None and stop < 12:
            done = open_result(path).frames_done
            assert done.sum() == stop  # exactly the yielded frames are on disk
            session.propagate(resume=True)
        session.close()
        result = open_result(path)
        assert result.frames_done.all()
        return np.asarray(result.labels)

    reference = run(tmp_path / "full.zarr", None)
    np.testing.assert_array_equal(run(tmp_path / "cut.zarr", stop_after), reference)


def test_frames_are_copied_into_the_store_only_without_a_source_file(
    disk_video, tmp_path, monkeypatch
) -> None:
    from napari_sam2v.session import persistence

    frames = disk_video[0]
    assert TrackingSession(frames).bytes_copied_into_store == frames.nbytes
    assert TrackingSession(frames, video_path="/data/dive.mp4").bytes_copied_into_store == 0
    monkeypatch.setattr(persistence, "COPY_IMAGE_LIMIT", frames.nbytes - 1)  # too large
    assert TrackingSession(frames).bytes_copied_into_store == 0


class MemoryEngine(DiskEngine):
    """Masks that depend on the frames propagated before, as SAM 2's memory does.

    Each frame's disk moves one pixel per frame this ``propagate`` call has passed
    since it began, so starting later (without that memory) gives other masks.
    """

    def propagate(self, *, start=None, direction="forward", frame_range=None, cancel=None):
        for seen, result in enumerate(
            super().propagate(
                start=start, direction=direction, frame_range=frame_range, cancel=cancel
            )  # fmt: skip
        ):
            result.masks.update({k: np.roll(m, seen, axis=1) for k, m in result.masks.items()})
            yield result


@pytest.mark.parametrize("replay", [True, False])
def test_a_run_stopped_before_a_reopen_resumes_like_an_uninterrupted_one(
    disk_video, tmp_path, monkeypatch, replay: bool
) -> None:
    from napari_sam2v.session.propagation import _Run
    from napari_sam2v.store import open_result

    frames, _ = disk_video

    def start(path) -> TrackingSession:
        session = TrackingSession(frames, engine_factory=MemoryEngine)
        session.create_store(path)
        session.add_click(2, 48, 30)
        return session

    whole = start(tmp_path / "whole.zarr")
    whole.propagate(start=2, direction="both")
    whole.close()
    reference = np.asarray(open_result(tmp_path / "whole.zarr").labels)

    cut = start(tmp_path / "cut.zarr")
    cancel = threading.Event()
    for info in cut.iter_propagate(start=2, direction="both", cancel=cancel):
        if info.done == 5:
            cancel.set()
    cut.close()  # as when the viewer closes; a crash leaves the state "running"
    if not replay:  # what resuming from the first missing frame would give
        made = _Run.from_state

        def without_replay(state, done):
            run = made(state, done)
            run.replay = False
            return run

        monkeypatch.setattr(_Run, "from_state", staticmethod(without_replay))
    again = TrackingSession.from_store(tmp_path / "cut.zarr", frames=frames,
                                       engine_factory=MemoryEngine)  # fmt: skip
    try:
        assert again.can_resume
        summary = again.propagate(resume=True)
        assert len(summary.frames) == len(frames) - 5  # only the missing frames are written
    finally:
        again.close()
    labels = np.asarray(open_result(tmp_path / "cut.zarr").labels)
    assert open_result(tmp_path / "cut.zarr").frames_done.all()
    assert np.array_equal(labels, reference) is replay


def test_resume_after_a_reopen_writes_a_damaged_finished_frame_again(disk_video, tmp_path):
    from napari_sam2v.store import open_result

    frames, _ = disk_video
    session = TrackingSession(frames, engine_factory=MemoryEngine)
    session.create_store(tmp_path / "cut.zarr")
    session.add_click(2, 48, 30)
    cancel = threading.Event()
    for info in session.iter_propagate(start=2, cancel=cancel):
        if info.done == 5:
            cancel.set()
    session.close()
    finished = open_result(tmp_path / "cut.zarr")
    reference = np.asarray(finished.labels).copy()
    chunk = tmp_path / "cut.zarr" / "labels" / "objects" / "0" / "3" / "0" / "0"
    assert finished.frames_done[3] and chunk.is_file()
    chunk.write_bytes(b"xx")
    with pytest.warns(UserWarning, match=r"frames 3\); they are tracked and written again"):
        again = TrackingSession.from_store(
            tmp_path / "cut.zarr", frames=frames, engine_factory=MemoryEngine
        )
    try:
        summary = again.propagate(resume=True)
        assert 3 in summary.frames and len(summary.frames) == len(frames) - 2 - 4
    finally:
        again.close()
    labels = np.asarray(open_result(tmp_path / "cut.zarr").labels)
    np.testing.assert_array_equal(labels[2:7], reference[2:7])


def test_a_finished_store_reopens_with_nothing_to_resume(stored: TrackingSession, tmp_path):
    stored.add_click(0, 30, 30)
    stored.propagate()
    path = stored.store.path
    stored.close()
    again = TrackingSession.from_store(path, frames=stored.frames, engine_factory=DiskEngine)
    try:
        assert not again.can_resume
    finally:
        again.close()
