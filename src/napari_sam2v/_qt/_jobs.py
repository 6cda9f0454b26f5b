"""Background jobs for the dock widgets: napari thread workers with clean error reporting.

Every slow call (model load, prefetch, preview, propagation, measurement, export)
runs through :class:`JobRunner`. Expected errors (:class:`~napari_sam2v.errors.Sam2vError`)
are caught *inside* the worker and shown as one napari notification with their message
(no traceback dialog); anything else is a bug and goes to napari's error handler.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from napari.qt.threading import create_worker
from napari.utils.notifications import show_error
from qtpy.QtCore import QObject, Signal

from napari_sam2v.errors import Sam2vError

__all__ = ["FIRST_USE_IMPORTS", "Failure", "JobRunner", "warm_imports"]

#: What the first session start or Reopen store imports on the GUI thread unless the
#: dock imported it before: pandas (napari's Labels layer), ome_zarr (the store), PyAV
#: (a video's frames), skimage.color (napari's label colours) and distributed, which
#: dask imports, when it is installed, on the first slice of a lazy layer.
FIRST_USE_IMPORTS = (
    "pandas",
    "ome_zarr.writer",
    "ome_zarr.format",
    "av",
    "skimage.color",
    "distributed",
)

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """The result of a job that raised an expected error."""

    job: str
    message: str


def _out_of_memory(job: str, exc: BaseException) -> Failure:
    """Turn out-of-memory errors (host or CUDA) into a message; re-raise anything else."""
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return Failure(job, f"{job}: out of memory; try a smaller model, the CPU, or a frame range")
    raise exc


def _guard(job: str, func: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any) -> Any:
        try:
            return func(*args)
        except Sam2vError as exc:
            return Failure(job, str(exc))
        except (MemoryError, RuntimeError) as exc:
            return _out_of_memory(job, exc)

    return run


def _guard_gen(job: str, func: Callable[..., Generator[Any, Any, Any]]) -> Callable[..., Any]:
    def run(*args: Any) -> Generator[Any, Any, Any]:
        try:
            result = yield from func(*args)
        except Sam2vError as exc:
            return Failure(job, str(exc))
        except (MemoryError, RuntimeError) as exc:
            return _out_of_memory(job, exc)
        return result

    return run


def _drive(func: Callable[..., Generator[Any, Any, Any]], emit: Callable[[Any], None]) -> Any:
    """A function that runs the generator ``func`` to its end, emitting each value.

    napari's generator workers stop at a yield once quit, as napari does to every
    running worker when its window closes: a propagation left there would hold the
    session's lock (taken in the worker's thread) for good. Run to its end here, it
    stops only through its own cancel event, after a whole frame.
    """

    def run(*args: Any) -> Any:
        gen = func(*args)
        while True:
            try:
                value = next(gen)
            except StopIteration as stop:
                return stop.value
            emit(value)

    return run


def warm_imports(*modules: str) -> threading.Thread:
    """Import ``modules`` in a background thread, so that the first use does not wait.

    The GUI thread otherwise pays for an import the first time it needs one (about
    0.8 s for ``ome_zarr`` on a 2-core machine, when the first store is created).
    """

    def run() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except ImportError:  # the real use reports it
                continue

    thread = threading.Thread(target=run, name="napari-sam2v imports", daemon=True)
    thread.start()
    return thread


class _Named:
    """A worker's function under the job's name.

    napari lists a running worker as ``Executing <function>``, for instance in the
    dialog that asks whether to close the viewer mid-run; this reads "Executing
    napari-sam2v propagation" there instead of an internal function's name.
    """

    def __init__(self, job: str, func: Callable[..., Any]) -> None:
        self.job, self._func = job, func

    def __call__(self, *args: Any) -> Any:
        return self._func(*args)

    def __repr__(self) -> str:
        return f"napari-sam2v {self.job}"


class _Relay(QObject):
    """Carries a generator job's values to the GUI thread (queued signal)."""

    yielded = Signal(object)


class JobRunner(QObject):
    """Start workers, track the exclusive one, and report expected errors.

    Exclusive jobs (model load, propagation, measurement, export) run one at a time:
    :attr:`busy_changed` tells the widget to disable conflicting controls, and is
    emitted again when the job finishes, is cancelled or fails. Light jobs (prefetch,
    preview) run beside them. Every job, a generator too, runs to its end in its
    worker: quitting the worker does not stop it (see :func:`_drive`).
    """

    busy_changed = Signal(bool)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._exclusive: Any = None
        self._workers: set[Any] = set()

    @property
    def busy(self) -> bool:
        """Whether an exclusive job is running."""
        return self._exclusive is not None

    def start(
        self,
        job: str,
        func: Callable[..., Any],
        *args: Any,
        on_done: Callable[[Any], None] | None = None,
        on_yield: Callable[[Any], None] | None = None,
        on_finished: Callable[[], None] | None = None,
        exclusive: bool = False,
        generator: bool = False,
    ) -> Any:
        """Run ``func(*args)`` in a worker thread.

        Parameters
        ----------
        job : str
            Short name used in messages ("propagation", "preview", ...).
        func : callable
            The slow function (a generator function when ``generator``).
        *args
            Its arguments.
        on_done : callable, optional
            Called in the GUI thread with the return value (not on failure).
        on_yield : callable, optional
            Called in the GUI thread with each yielded value (generator jobs).
        on_finished : callable, optional
            Called in the GUI thread when the job ends, whether it succeeded or not.
            Connected before the worker starts, so a fast job cannot end unseen
            (connecting to the returned worker's ``finished`` afterwards can miss it).
        exclusive : bool
            Refuse to start while another exclusive job runs; mark the runner busy.
        generator : bool
            ``func`` is a generator function.

        Returns
        -------
        worker or None
            The started worker, or ``None`` when refused because the runner is busy.
        """
        if exclusive and self.busy:
            self.failed.emit(f"{job}: another job is running; wait or cancel it first")
            show_error(f"{job}: another job is running; wait or cancel it first")
            return None
        relay = _Relay()  # no parent: it outlives a dock deleted while the job runs
        if generator:
            wrapped = _drive(_guard_gen(job, func), relay.yielded.emit)
        else:
            wrapped = _guard(job, func)
        worker = create_worker(_Named(job, wrapped), *args, _start_thread=False)
        worker.relay = relay
        self._workers.add(worker)

        def returned(value: Any) -> None:
            if not self._alive():
                return  # the dock closed (with the viewer) while the job ran
            if isinstance(value, Failure):
                _log.info("%s failed: %s", value.job, value.message)
                self.failed.emit(value.message)
                show_error(value.message)
            elif on_done is not None:
                on_done(value)

        def finished() -> None:
            self._workers.discard(worker)
            if worker is self._exclusive:
                self._exclusive = None
                if self._alive():
                    self.busy_changed.emit(False)

        worker.returned.connect(returned)
        if on_yield is not None:

            def relay_yield(value: Any) -> None:
                if self._alive():
                    on_yield(value)

            relay.yielded.connect(relay_yield)
        worker.finished.connect(finished)
        if on_finished is not None:
            worker.finished.connect(on_finished)
        if exclusive:
            self._exclusive = worker
            self.busy_changed.emit(True)
        worker.start()
        return worker

    def _alive(self) -> bool:
        """Whether this runner's Qt object still exists (not deleted with its window)."""
        try:
            self.objectName()
        except RuntimeError:
            return False
        return True

    @property
    def active(self) -> bool:
        """Whether any job (exclusive or light) is still running."""
        return bool(self._workers)

    def quit_all(self) -> None:
        """Ask every running worker to stop; jobs end by themselves (cancel a propagation)."""
        for worker in list(self._workers):
            worker.quit()
