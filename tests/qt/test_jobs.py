"""Expected errors in worker jobs become messages; bugs are not swallowed."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from napari_sam2v._qt._jobs import FIRST_USE_IMPORTS, Failure, _guard, _guard_gen, warm_imports
from napari_sam2v.errors import StoreLockedError


def _raise(exc: BaseException):
    def run() -> None:
        raise exc

    return run


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (StoreLockedError("clip.zarr: another writer holds the store"), "another writer"),
        (MemoryError(), "out of memory"),
        (RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), "out of memory"),
    ],
)
def test_expected_errors_become_failures(exc: BaseException, message: str) -> None:
    result = _guard("propagation", _raise(exc))()
    assert isinstance(result, Failure) and message in result.message


def test_bugs_are_raised() -> None:
    with pytest.raises(RuntimeError, match="index bug"):
        _guard("preview", _raise(RuntimeError("index bug")))()


def test_generator_jobs_return_their_value_or_a_failure() -> None:
    def frames():
        yield 1
        yield 2
        return "done"

    gen = _guard_gen("propagation", frames)()
    assert list(_drain(gen)) == [1, 2, "done"]

    def broken():
        yield 1
        raise StoreLockedError("locked")

    out = list(_drain(_guard_gen("propagation", broken)()))
    assert out[0] == 1 and isinstance(out[1], Failure) and out[1].message == "locked"


def _drain(gen):
    try:
        while True:
            yield next(gen)
    except StopIteration as stop:
        yield stop.value


def test_on_finished_sees_a_job_that_ends_before_the_caller_looks(qtbot) -> None:
    """``on_finished`` is connected before the worker starts.

    A slot connected to the returned worker's ``finished`` after ``start`` misses a
    job that ended in between (here, while the GUI thread sleeps): that race once
    left the dock's progress bar in MiB after a fast model download.
    """
    import threading
    import time

    from napari_sam2v._qt._jobs import JobRunner

    runner = JobRunner()
    calls: list[str] = []
    ran = threading.Event()
    worker = runner.start("quick", ran.set, on_finished=lambda: calls.append("on_finished"))
    assert ran.wait(10)  # the worker thread runs the job while the GUI thread is busy,
    time.sleep(0.3)  # and emits `finished` right after it
    worker.finished.connect(lambda: calls.append("late"))
    qtbot.waitUntil(lambda: not runner.active, timeout=10_000)
    qtbot.wait(100)
    assert calls == ["on_finished"]
    failing = runner.start(
        "broken", _raise(StoreLockedError("locked")), on_finished=lambda: calls.append("failed")
    )
    assert failing is not None
    qtbot.waitUntil(lambda: "failed" in calls, timeout=10_000)


def test_a_job_that_outlives_its_runner_ends_quietly(qtbot) -> None:
    """Closing the viewer mid-job deletes the dock and its runner, not the thread."""
    import sys
    import threading

    from napari_sam2v._qt._jobs import JobRunner

    runner = JobRunner()
    go, done = threading.Event(), []
    seen: list[BaseException] = []
    hook, sys.excepthook = sys.excepthook, lambda t, v, tb: seen.append(v)
    try:
        worker = runner.start("slow", lambda: go.wait(10) and 42, on_done=done.append,
                              exclusive=True)  # fmt: skip
        ended = threading.Event()
        worker.finished.connect(ended.set)
        runner.deleteLater()
        qtbot.waitUntil(lambda: not runner._alive(), timeout=10_000)
        go.set()
        qtbot.waitUntil(ended.is_set, timeout=10_000)
        qtbot.wait(100)
    finally:
        sys.excepthook = hook
    assert done == [] and seen == []  # no callback into the deleted dock, no traceback


def test_a_generator_job_runs_to_its_end_when_its_worker_is_quit(qtbot) -> None:
    """napari quits every running worker when its window closes. A propagation left at a
    yield then would keep its session's lock (taken in the worker's thread) for good:
    it must stop only through its own cancel event."""
    import threading

    from napari_sam2v._qt._jobs import JobRunner

    runner = JobRunner()
    go, ended = threading.Event(), threading.Event()
    seen: list[int] = []

    def frames():
        for frame in range(4):
            yield frame
            go.wait(10)
        ended.set()  # after the last frame, as a run that saves and lets go of its lock

    worker = runner.start("propagation", frames, generator=True, on_yield=seen.append)
    qtbot.waitUntil(lambda: seen == [0], timeout=10_000)
    worker.quit()  # as napari's window does on closing
    go.set()
    assert ended.wait(10)
    qtbot.waitUntil(lambda: not runner.active, timeout=10_000)
    assert seen == [0, 1, 2, 3]


def test_napari_lists_a_running_job_by_its_name(make_napari_viewer, qtbot) -> None:
    """napari's task list (and its close-confirm dialog) names the job, not a function."""
    import threading

    from napari_sam2v._qt._jobs import JobRunner

    viewer = make_napari_viewer()
    runner = JobRunner()
    release = threading.Event()
    runner.start("propagation", release.wait, 10)
    tasks = viewer.window._task_status_manager
    qtbot.waitUntil(lambda: any("Executing" in s for s in tasks.get_status()), timeout=10_000)
    assert tasks.get_status() == ["napari-worker: Executing napari-sam2v propagation"]
    release.set()
    qtbot.waitUntil(lambda: not runner.active, timeout=10_000)


def test_warm_imports_skip_a_missing_module_and_import_the_rest(tmp_path, monkeypatch) -> None:
    (tmp_path / "sam2v_warm_probe.py").write_text("LOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "sam2v_warm_probe", raising=False)
    warm_imports("sam2v_no_such_module", "sam2v_warm_probe").join(timeout=30)
    assert sys.modules["sam2v_warm_probe"].LOADED
    monkeypatch.delitem(sys.modules, "sam2v_warm_probe")


def test_the_dock_warms_what_a_first_session_imports() -> None:
    """The test environment has every extra, so a misspelt module would show here."""
    for name in FIRST_USE_IMPORTS:
        assert importlib.util.find_spec(name) is not None, name
