"""Run a manifest of videos on dask.distributed: one task per video.

By default the batch starts a :class:`distributed.LocalCluster` of worker
processes bound to 127.0.0.1 (nothing listens on the network), talking TLS with
credentials made for that cluster alone (no other local user can connect), and stops
it at the end. Give ``scheduler="tcp://host:8786"`` to use a running cluster instead
(``dask scheduler`` + ``dask worker``, dask-jobqueue on SLURM, Kubernetes); the
workers need napari-sam2v installed and must see the same file system.

A worker that dies mid-video (out of memory, node preempted) loses only that
attempt: the scheduler hands the video to another worker, which resumes the
partial store. Videos whose workers keep dying are reported as failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from napari_sam2v.batch.combine import combine_tables
from napari_sam2v.batch.interrupt import request_stop
from napari_sam2v.batch.manifest import Manifest, read_manifest
from napari_sam2v.batch.names import keep_earlier_names
from napari_sam2v.batch.report import BatchReport
from napari_sam2v.batch.tasks import TaskOptions, VideoOutcome, VideoTask
from napari_sam2v.batch.worker import NOT_STARTED, is_finished, process_video
from napari_sam2v.engines import check_engine_options
from napari_sam2v.errors import BatchError, InputError, Sam2vError, StoreError
from napari_sam2v.store.journal import StoreLock

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

__all__ = ["default_workers", "run_batch"]

OutcomeCallback = Callable[[VideoOutcome, int, int], None]

_ENGINES = ("sam2", "classic")
_DIRECTIONS = ("forward", "backward", "both")
_FORMATS = ("csv", "parquet", "xlsx")


def default_workers(n_videos: int, *, cpus: int | None = None) -> int:
    """Default number of LocalCluster workers: one per 4 CPU cores, at least 1.

    Parameters
    ----------
    n_videos : int
        Number of videos (never more workers than videos).
    cpus : int, optional
        CPU cores to plan for (default: ``os.cpu_count()``).

    Returns
    -------
    int
    """
    cpus = cpus or os.cpu_count() or 1
    return max(1, min(n_videos, cpus // 4))


def _probe(address: str, timeout: float = 10.0) -> None:
    """Fail fast, with one clear message, when nothing listens at a tcp:// address."""
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if parsed.scheme not in ("tcp", "tls"):
        return  # other transports (ucx, inproc) are left to distributed
    if parsed.hostname is None or parsed.port is None:
        raise BatchError(
            f"scheduler address {address!r} needs a host and a port, e.g. tcp://127.0.0.1:8786"
        )
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=timeout):
            return
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise BatchError(f"cannot reach the dask scheduler at {address}: {reason}") from None


@contextlib.contextmanager
def _connect(scheduler: str | None, workers: int, threads: int) -> Iterator[tuple[Client, str]]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise BatchError(
            "batch runs need dask.distributed: pip install 'napari-sam2v[dist]'"
        ) from None
    if scheduler:
        _probe(scheduler)
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise BatchError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from None
        try:
            yield client, scheduler
        finally:
            client.close()
        return
    cluster = LocalCluster(
        # TLS with credentials made for this cluster only: another local user who
        # finds the port cannot connect and run code in the workers.
        security=_local_security(),
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        # No dashboard; the scheduler's small HTTP server takes a free local port
        # instead of 8787, which another batch or Jupyter may hold (dask then warns).
        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.CRITICAL,
        env={"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)},
        # a terminal's Ctrl-C reaches the workers too: it stops their videos
        preload=["napari_sam2v.batch.interrupt"],
    )
    client = Client(cluster)
    try:
        yield client, str(cluster.scheduler_address)
    finally:
        client.close()
        cluster.close()


@contextlib.contextmanager
def _output_lock(out: Path) -> Iterator[None]:
    """One batch at a time per output folder (two would race for the same stores)."""
    lock = StoreLock(out / ".napari-sam2v-batch.lock", what=f"the batch output folder {out}")
    try:
        lock.acquire()
    except StoreError as exc:
        raise BatchError(f"{exc}; or give this batch another output folder") from None
    try:
        yield
    finally:
        lock.release()


def _local_security() -> bool:
    """Whether the local cluster can use throw-away TLS credentials (needs cryptography)."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        warnings.warn(
            "the local dask cluster runs without TLS, so other users of this machine could "
            "connect to it: pip install cryptography (part of napari-sam2v[dist])",
            stacklevel=3,
        )
        return False
    return True


def _validate(engine: str, direction: str, table_format: str) -> None:
    if engine not in _ENGINES:
        raise InputError(f"unknown engine {engine!r}: choose one of {', '.join(_ENGINES)}")
    if direction not in _DIRECTIONS:
        raise InputError(f"unknown direction {direction!r}: use {', '.join(_DIRECTIONS)}")
    if table_format not in _FORMATS:
        raise InputError(f"unknown table format {table_format!r}: use {', '.join(_FORMATS)}")


def _check_models(manifest: Manifest, default: str | None, *, local: bool) -> None:
    """Every row's model must be a known name or a usable path, before any video starts.

    On a remote cluster a path may exist only where the workers run, so there only
    names and existing folders are checked.
    """
    from napari_sam2v.engines.sam2.registry import resolve_model

    problems: dict[str, str] = {}
    for row in manifest:
        name = row.model or default
        if name is None or name in problems:
            continue
        try:
            resolve_model(name)
        except FileNotFoundError as exc:
            if local:
                problems[name] = f"row {row.row}: {exc}"
        except Sam2vError as exc:
            problems[name] = f"row {row.row}: {exc}"
    if problems:
        raise InputError(f"manifest {manifest.path}: {'; '.join(problems.values())}")


def _finished_meanwhile(task: VideoTask, since: float) -> VideoOutcome | None:
    """The outcome of a video finished by its worker whose result never arrived.

    Its ``done.json`` was written after ``since``, but the batch stopped before the
    result reached this process (as when Ctrl-C reaches the workers too).
    """
    try:
        marker = json.loads(task.done_marker.read_text(encoding="utf-8"))
        if not is_finished(task) or task.done_marker.stat().st_mtime < since:
            return None
    except (OSError, ValueError):
        return None
    fields = {f.name for f in dataclasses.fields(VideoOutcome)}
    try:
        return VideoOutcome(**{k: v for k, v in marker.items() if k in fields})
    except TypeError:
        return None


def _lost(task: VideoTask, exc: BaseException, *, interrupted: bool = False) -> VideoOutcome:
    reason = str(exc) or type(exc).__name__
    if interrupted:
        reason = (
            f"the batch stopped ({type(exc).__name__}) before this video finished; "
            "re-run the same command to resume it"
        )
    elif type(exc).__name__ == "KilledWorker":
        reason = (
            "the workers running this video kept dying (out of memory or killed); "
            "re-run the batch to resume it"
        )
    return VideoOutcome.failed(task, reason if interrupted else f"task lost: {reason}")


def run_batch(
    manifest: Manifest | str | Path,
    out: str | Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    engine: str = "sam2",
    model: str | None = None,
    device: str = "auto",
    direction: str = "forward",
    table_format: str = "csv",
    plots: bool = False,
    engine_options: dict[str, Any] | None = None,
    remeasure: bool = False,
    on_outcome: OutcomeCallback | None = None,
    cancel: threading.Event | None = None,
) -> BatchReport:
    """Track and measure every video of a manifest on dask.distributed.

    Each video is one task writing ``<out>/<name>/result.zarr``,
    ``<out>/<name>/tables/`` and ``<out>/<name>/done.json``. The batch then writes
    ``<out>/batch_tracks.{parquet,csv}`` and ``<out>/batch_frames.{parquet,csv}``
    (all videos, with a ``video`` column) and ``<out>/batch_report.json``.
    Re-running the same batch skips finished videos and resumes partial stores;
    with ``remeasure=True`` it measures the finished videos again instead.

    Parameters
    ----------
    manifest : Manifest or str or pathlib.Path
        A validated manifest or the path of a manifest CSV.
    out : str or pathlib.Path
        Output folder (created).
    scheduler : str, optional
        Address of a running dask scheduler (``tcp://host:8786``). Default: a
        LocalCluster on 127.0.0.1, stopped at the end.
    workers : int, optional
        LocalCluster worker processes (see :func:`default_workers`); ignored
        with ``scheduler``.
    engine : {"sam2", "classic"}, optional
        Engine of every video.
    model : str, optional
        Default model name or path (a row's ``model`` column overrides it).
    device : str, optional
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    direction : {"forward", "backward", "both"}, optional
        Propagation direction.
    table_format : {"csv", "parquet", "xlsx"}, optional
        Format of the per-video tables.
    plots : bool, optional
        Also write each video's plots.
    engine_options : dict, optional
        Further engine keyword options for every video, e.g.
        ``{"precision": "mixed"}`` or ``{"feature": "phase"}`` (checked before
        any video starts).
    remeasure : bool, optional
        Measure videos finished by an earlier run again from their stores, without
        tracking: after correcting the manifest's calibration columns or the stores'
        calibration (``napari-sam2v calibrate``), or for another ``table_format``.
        A row's calibration columns are recorded in its store before measuring.
    on_outcome : callable, optional
        ``on_outcome(outcome, n_finished, n_total)``, called on the calling thread
        as each video finishes (for progress output).
    cancel : threading.Event, optional
        Set it to stop the batch: each running video stops after its current frame
        (its store keeps the finished frames, and the next run resumes it), and the
        videos not started are not started. Both are reported as failed, saying so;
        the batch then writes its report and combined tables and returns.

    Returns
    -------
    BatchReport
        Also saved to ``<out>/batch_report.json``.

    Raises
    ------
    InputError
        For an invalid manifest or option.
    BatchError
        If dask.distributed is missing or the scheduler cannot be reached.
    StoreError
        If the output folder cannot be created.
    """
    _validate(engine, direction, table_format)
    extra = dict(engine_options or {})
    for name in ("model", "device"):
        if name in extra:
            raise InputError(f"engine option {name!r} has its own argument: use {name}=...")
    check_engine_options(engine, extra)
    if not isinstance(manifest, Manifest):
        manifest = read_manifest(manifest, check_files=not remeasure)
    if engine == "sam2":
        _check_models(manifest, model, local=scheduler is None)
    n_workers = workers if workers is not None else default_workers(len(manifest))
    if n_workers < 1:
        raise InputError(f"--workers must be at least 1, got {n_workers}")
    cpus = os.cpu_count() or 1
    threads = max(1, cpus // n_workers)
    options = TaskOptions(
        engine=engine,
        model=model,
        device=device,
        direction=direction,
        table_format=table_format,
        plots=plots,
        torch_threads=None if scheduler else threads,
        engine_options=tuple(sorted(extra.items())),
        remeasure=remeasure,
        batch_id=uuid.uuid4().hex[:8],
    )
    out = Path(out).expanduser().resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the batch output folder {out}: {exc}") from None
    with _output_lock(out):
        manifest = keep_earlier_names(manifest, out)
        tasks = [VideoTask(row=row, out_dir=out / row.name, options=options) for row in manifest]
        outcomes: dict[str, VideoOutcome] = {}
        total = len(tasks)

        def finish(outcome: VideoOutcome) -> None:
            outcomes[outcome.name] = outcome
            if on_outcome is not None:
                on_outcome(outcome, len(outcomes), total)

        begin = time.perf_counter()
        pending = []
        for task in tasks:
            if is_finished(task) and not remeasure:
                finish(process_video(task))
            else:
                pending.append(task)
        address, connected = scheduler or "none", 0
        if pending and cancel is not None and cancel.is_set():  # stopped before it began
            for task in pending:
                finish(VideoOutcome.failed(task, NOT_STARTED))
        elif pending:
            address, connected = _run_on_cluster(
                pending, tasks, outcomes, finish, scheduler, min(n_workers, len(pending)),
                threads, out, begin, cancel,
            )  # fmt: skip
        report = _report(tasks, outcomes, out, address, connected, begin)
        try:
            combined = combine_tables(report.outcomes, out)
        except OSError as exc:
            report.save()
            raise StoreError(
                f"cannot write the combined tables in {out}: {exc}; each video's own results "
                "are complete, and batch_report.json was written"
            ) from None
        report.tables = combined.files
        report.table_units, report.mixed_units = combined.units, combined.unconverted
        for outcome in report.outcomes:
            if outcome.name in combined.problems:
                outcome.status, outcome.error = "failed", combined.problems[outcome.name]
        report.save()
        return report


def _run_on_cluster(
    pending: list[VideoTask],
    tasks: list[VideoTask],
    outcomes: dict[str, VideoOutcome],
    finish: Callable[[VideoOutcome], None],
    scheduler: str | None,
    workers: int,
    threads: int,
    out: Path,
    begin: float,
    cancel: threading.Event | None,
) -> tuple[str, int]:
    """Run the pending videos, one task each; returns the scheduler address and workers.

    Setting ``cancel`` stops the videos (see :func:`_collect`). On an exception
    (KeyboardInterrupt, a lost scheduler) the tasks are cancelled and the report of
    what finished is written before the exception goes on.
    """
    started = time.time()
    with _connect(scheduler, workers, threads) as (client, address):
        connected = len(client.scheduler_info().get("workers", {}))
        batch_id = pending[0].options.batch_id
        futures = {
            client.submit(
                process_video, task, key=f"napari-sam2v-{task.row.name}-{batch_id}", pure=False
            ): task
            for task in pending
        }
        try:
            _collect(client, futures, finish, cancel, batch_id)
        except BaseException as exc:
            client.cancel(list(futures))
            with contextlib.suppress(Exception):  # a remote worker's video stops too
                client.run(request_stop, batch_id, wait=False)
            for task in tasks:
                if task.row.name not in outcomes:
                    done = _finished_meanwhile(task, started)
                    outcomes[task.row.name] = done or _lost(task, exc, interrupted=True)
            _report(tasks, outcomes, out, address, connected, begin).save()
            raise
    return address, connected


def _collect(
    client: Client,
    futures: dict[Any, VideoTask],
    finish: Callable[[VideoOutcome], None],
    cancel: threading.Event | None,
    batch_id: str,
) -> None:
    """Finish each video as its task ends; once ``cancel`` is set, stop the rest.

    The workers are asked to stop this batch's videos: running ones stop after their
    current frame and report so, the others return without starting.
    """
    from distributed import TimeoutError as WaitTimeout  # asyncio's on Python 3.10
    from distributed import wait

    remaining = dict(futures)
    stopping = False
    while remaining:
        if cancel is not None and cancel.is_set() and not stopping:
            stopping = True
            client.run(request_stop, batch_id)
        try:
            done = wait(list(remaining), timeout=0.5, return_when="FIRST_COMPLETED").done
        except WaitTimeout:
            continue
        for future in done:
            task = remaining.pop(future)
            try:
                outcome = future.result()
            except Exception as exc:  # a lost task is one failed video
                outcome = _lost(task, exc)
            finish(outcome)


def _report(
    tasks: list[VideoTask],
    outcomes: dict[str, VideoOutcome],
    out: Path,
    address: str,
    connected: int,
    begin: float,
) -> BatchReport:
    return BatchReport(
        out=out,
        scheduler=address,
        n_workers=connected,
        outcomes=[outcomes[task.row.name] for task in tasks],
        wall_seconds=time.perf_counter() - begin,
    )
