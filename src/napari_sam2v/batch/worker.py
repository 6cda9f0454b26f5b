"""The code that runs inside a dask worker: one video per call, engines cached per process.

:func:`process_video` is what the batch submits for each manifest row. It never
raises for a problem with one video: the error becomes a ``failed``
:class:`~napari_sam2v.batch.tasks.VideoOutcome`, so one bad video never stops a
batch. Engines (and so model weights) live in a module-level
:class:`EngineCache`, which a worker process keeps between tasks: a worker builds
each model once, not once per video.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_sam2v._files import atomic_write_text
from napari_sam2v.batch.interrupt import stop_event
from napari_sam2v.batch.tasks import VideoOutcome, VideoTask
from napari_sam2v.engines import Engine, create_engine
from napari_sam2v.errors import BatchError, Sam2vError
from napari_sam2v.types import CalibrationKeywords, any_given, given_calibration

if TYPE_CHECKING:
    from napari_sam2v.store.result import Result

__all__ = ["ENGINE_CACHE", "EngineCache", "check_owner", "is_finished", "process_video"]

EngineKey = tuple[str, str, str, tuple[tuple[str, Any], ...]]

#: Why a video of a stopped batch is not finished (see :mod:`~napari_sam2v.batch.interrupt`).
STOPPED = (
    "the batch was stopped before this video finished; its store keeps the frames "
    "tracked so far: re-run the same command to resume it"
)
NOT_STARTED = "not started: the batch was stopped; re-run the same command to track it"


class EngineCache:
    """Engines kept alive between tasks of one process, keyed by engine/model/device.

    An engine is handed to one task at a time (engines hold per-video state); a
    second concurrent task with the same key gets its own instance. Idle
    engines beyond ``max_idle`` are closed, least recently used first. An engine
    whose task raised an unexpected error is closed, not reused.

    Parameters
    ----------
    factory : callable, optional
        ``factory(engine_name, **options) -> Engine``; defaults to
        :func:`napari_sam2v.engines.create_engine`.
    max_idle : int, optional
        Most idle engines kept (default 2).
    """

    def __init__(
        self, factory: Callable[..., Engine] = create_engine, *, max_idle: int = 2
    ) -> None:
        self._factory = factory
        self._max_idle = max(0, int(max_idle))
        self._idle: OrderedDict[int, tuple[EngineKey, Engine]] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0

    @staticmethod
    def key(
        engine: str,
        model: str | None,
        device: str,
        options: tuple[tuple[str, Any], ...] = (),
    ) -> EngineKey:
        """Cache key of an engine configuration."""
        return (engine, model or "", device, tuple(sorted(options)))

    def _build(self, key: EngineKey) -> Engine:
        engine, model, device, extra = key
        if engine == "classic":
            return self._factory("classic", **dict(extra))
        options: dict[str, Any] = {**dict(extra), "device": device}
        if model:
            options["model"] = model
        return self._factory(engine, **options)

    @contextlib.contextmanager
    def acquire(
        self,
        engine: str,
        model: str | None = None,
        device: str = "auto",
        options: tuple[tuple[str, Any], ...] = (),
    ) -> Iterator[tuple[Engine, bool]]:
        """Borrow an engine for one task.

        Parameters
        ----------
        engine : str
            Engine name.
        model : str, optional
            Model name or path.
        device : str, optional
            Device.
        options : tuple of (str, object) pairs, optional
            Further engine keyword options (part of the cache key).

        Yields
        ------
        (Engine, bool)
            The engine, and whether it was built for this call (``False`` when
            it came from the cache).
        """
        key = self.key(engine, model, device, options)
        found: Engine | None = None
        with self._lock:
            for token, (idle_key, idle_engine) in self._idle.items():
                if idle_key == key:
                    found = idle_engine
                    del self._idle[token]
                    break
        built = found is None
        if found is None:
            found = self._build(key)
            with self._lock:
                self.loads += 1
        try:
            yield found, built
        except Sam2vError:
            # An expected error (bad video, bad prompt): the engine is reset by the
            # next set_video, so keep it rather than rebuild the model.
            self._release(key, found)
            raise
        except BaseException:
            # An unexpected crash may leave half-updated state: drop the engine.
            found.close()
            raise
        self._release(key, found)

    def _release(self, key: EngineKey, engine: Engine) -> None:
        evicted: list[Engine] = []
        with self._lock:
            self._idle[id(engine)] = (key, engine)
            while len(self._idle) > self._max_idle:
                _, (_, old) = self._idle.popitem(last=False)
                evicted.append(old)
        for old in evicted:
            old.close()

    def clear(self) -> None:
        """Close every idle engine."""
        with self._lock:
            engines = [engine for _, engine in self._idle.values()]
            self._idle.clear()
        for engine in engines:
            engine.close()

    def __len__(self) -> int:
        return len(self._idle)


#: The per-process cache used by :func:`process_video`.
ENGINE_CACHE = EngineCache()


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "local"


def is_finished(task: VideoTask) -> bool:
    """Whether an earlier run finished this video (store complete, tables written)."""
    return task.done_marker.is_file() and task.store_path.exists()


def _same_video(recorded: dict[str, Any], video: Path) -> bool:
    """Whether a store's recorded source is ``video`` (followed by content if moved)."""
    path = recorded.get("path")
    if not path:
        return True  # no file recorded (an array input): nothing to compare
    from napari_sam2v.store.result import FINGERPRINT_KEYS, same_file

    if video.is_file() and all(k in recorded for k in FINGERPRINT_KEYS):
        return same_file(recorded, video)
    return Path(path) == video


def check_owner(task: VideoTask) -> Result | None:
    """Refuse an output folder whose store holds another video's or prompts' results.

    Output folders are named from the manifest; after rows or names change, a folder
    may hold an earlier run of another row. Skipping, measuring or resuming it would
    report that row's numbers under this row's name.

    Parameters
    ----------
    task : VideoTask
        The video and its output folder.

    Returns
    -------
    Result or None
        The folder's store, opened read-only, or ``None`` when there is none or it
        cannot be read (an interrupted creation: :func:`~napari_sam2v.store.track`
        decides what to do with it).

    Raises
    ------
    BatchError
        Naming what the folder holds; nothing is changed.
    """
    from napari_sam2v.io.prompt_files import Prompts
    from napari_sam2v.store import open_result

    if not task.store_path.exists():
        return None
    try:
        result = open_result(task.store_path)
    except Sam2vError:
        return None
    row, keep = task.row, "nothing there was changed"
    recorded = result.metadata.get("source") or {}
    if not _same_video(recorded, row.video):
        if recorded.get("path") == str(row.video.resolve()):
            raise BatchError(
                f"{task.out_dir} holds the results of {row.video} as it was: the file "
                f"changed since that run (manifest row {row.row}; its size or modification "
                "time differs from what the store recorded). To track the new file, move "
                f"that folder away or give this row another 'name'; {keep}"
            )
        raise BatchError(
            f"{task.out_dir} holds the results of {recorded.get('path')}, not of {row.video} "
            f"(manifest row {row.row}): rows or names changed since that run. Give this row "
            f"its own 'name', or move that folder away; {keep}"
        )
    if row.prompts.is_file() and Prompts.load(row.prompts) != result.prompts:
        raise BatchError(
            f"{task.out_dir} was tracked with other prompts than {row.prompts} (manifest row "
            f"{row.row}). To track again with the new prompts, move that folder away and "
            f"re-run; {keep}"
        )
    return result


def _load_marker(task: VideoTask, outcome: VideoOutcome) -> None:
    try:
        previous = json.loads(task.done_marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    outcome.n_frames = int(previous.get("n_frames", 0))
    outcome.n_objects = int(previous.get("n_objects", 0))
    outcome.engine_info = dict(previous.get("engine_info", {}))


def _finished(result: Result | None) -> Result | None:
    """``result`` when an earlier run finished tracking it, else ``None``."""
    if result is None or not (result.complete and result.status == "complete"):
        return None
    return result


def _record_calibration(task: VideoTask, result: Result, given: CalibrationKeywords) -> Result:
    """Record the manifest row's calibration in a finished store, if it differs.

    The tables are measured with the row's calibration, so the store's OME-Zarr scale
    (napari, Fiji) and provenance must say the same. Returns the store, reopened when
    it was changed.
    """
    if not any_given(given):
        return result
    new = result.calibration.overridden(**given)
    if new == result.calibration:
        return result
    from napari_sam2v.store import ResultStore, open_result

    with ResultStore.open(task.store_path) as store:
        store.set_calibration(new)
    return open_result(task.store_path)


def _remove_stale_tables(folder: Path, tables: dict[str, Any], written: list[Path]) -> None:
    """Remove tables an earlier save wrote in another format (``--remeasure --format``)."""
    keep = {path.name for path in written}
    names = [f"{kind}.{ext}" for kind in tables for ext in ("csv", "parquet")]
    for name in [*names, "measurements.xlsx"]:
        if name not in keep:
            (folder / name).unlink(missing_ok=True)


def _run(
    task: VideoTask,
    outcome: VideoOutcome,
    stored: Result | None,
    stop: threading.Event | None = None,
) -> None:
    from napari_sam2v.analysis import measure
    from napari_sam2v.io.prompt_files import Prompts
    from napari_sam2v.store.pipeline import track

    row, options = task.row, task.options
    if options.torch_threads and options.engine == "sam2":
        import torch

        torch.set_num_threads(int(options.torch_threads))
    task.out_dir.mkdir(parents=True, exist_ok=True)
    outcome.resumed = task.store_path.exists()
    start = time.perf_counter()
    calibration = given_calibration(row)
    result = _finished(stored) if outcome.resumed else None
    if result is None and stored is not None and options.remeasure:
        # An unfinished store is tracked on: with the row's (corrected) calibration
        # recorded first, since resuming refuses a calibration other than the store's.
        _record_calibration(task, stored, calibration)
    if result is not None:
        # Tracked by an earlier run (which stopped before its tables, or --remeasure):
        # measure only, with the row's calibration recorded in the store first.
        outcome.measured_only = True
        result = _record_calibration(task, result, calibration)
        recorded = result.metadata.get("engine") or {}
        outcome.engine_info = {
            key: recorded.get(key) for key in ("engine", "model", "device", "random_weights")
        }
    else:
        prompts = Prompts.load(row.prompts)
        with ENGINE_CACHE.acquire(
            options.engine, task.model, options.device, options.engine_options
        ) as (
            engine,
            built,
        ):
            outcome.model_loaded = built
            result = track(
                row.video,
                prompts,
                task.store_path,
                engine=engine,
                direction=options.direction,
                channel=row.channel,
                axes=row.axes,
                **calibration,
                resume=outcome.resumed,
                cancel=stop,
            )
            info = engine.info
        if result.status == "cancelled" and not result.complete:
            raise BatchError(STOPPED)
        outcome.engine_info = {
            "engine": info.engine,
            "model": info.model,
            "device": info.device,
            "random_weights": info.random_weights,
        }
    outcome.seconds["track"] = round(time.perf_counter() - start, 3)
    start = time.perf_counter()
    measurements = measure(result, **calibration)
    written = measurements.save(task.tables_dir, format=options.table_format)
    _remove_stale_tables(task.tables_dir, measurements.tables(), written)
    if options.plots:
        measurements.save_plots(task.out_dir / "plots")
    outcome.seconds["measure"] = round(time.perf_counter() - start, 3)
    outcome.n_frames = int(result.labels.shape[0])
    outcome.n_objects = len(result.objects)
    outcome.store = str(task.store_path)
    outcome.tables = str(task.tables_dir)


def process_video(task: VideoTask) -> VideoOutcome:
    """Track and measure one video; never raises for a problem with that video.

    Skips a video whose output folder holds a finished run (or, with
    ``options.remeasure``, measures its store again), resumes a partial store,
    otherwise starts fresh. Writes ``<out>/result.zarr``, ``<out>/tables/``
    (and ``<out>/plots/``), then ``<out>/done.json`` last.

    Parameters
    ----------
    task : VideoTask
        The video and the batch options.

    Returns
    -------
    VideoOutcome
        ``done``, ``skipped`` or ``failed`` (with the reason).
    """
    begin = time.perf_counter()
    outcome = VideoOutcome.failed(task, worker=_worker_address(), pid=os.getpid())
    stop = stop_event(task.options.batch_id) if task.options.batch_id else None
    if stop is not None and stop.is_set():
        outcome.error = NOT_STARTED
        return outcome
    try:
        stored = check_owner(task)
        if is_finished(task) and not task.options.remeasure:
            outcome.status = "skipped"
            _load_marker(task, outcome)
        else:
            if task.options.remeasure:
                # Until its tables are made again, the video is not finished.
                task.done_marker.unlink(missing_ok=True)
            _run(task, outcome, stored, stop)
            outcome.status = "done"
            outcome.seconds["total"] = round(time.perf_counter() - begin, 3)
            text = json.dumps(outcome.to_dict(), indent=2)
            atomic_write_text(task.done_marker, text, fsync=False)
    except Sam2vError as exc:
        outcome.error = str(exc)
    except Exception as exc:  # one crash must not stop a batch
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
        outcome.error = f"unexpected {type(exc).__name__}: {exc}{where}"
    outcome.seconds["total"] = round(time.perf_counter() - begin, 3)
    return outcome
