"""``track()``: run source -> engine -> store, resumably.

Resuming re-runs the engine from the prompted frame, because SAM 2's memory of an
object depends on every frame before (starting later would change the masks), but
writes only the frames the store does not already hold. A resumed run therefore ends
with exactly the labels of an uninterrupted run, and no finished frame is touched
(unless its chunks can no longer be read: it is written again).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari_sam2v.engines.base import Direction, Engine
from napari_sam2v.errors import InputError, PromptError, StoreError
from napari_sam2v.io import VideoSource, open_video
from napari_sam2v.io.frame_times import frame_interval_range, is_own_interval, variable_rate_note
from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.prompts import PromptSet
from napari_sam2v.store.result import Result, open_result
from napari_sam2v.store.result_store import ResultStore
from napari_sam2v.store.resume import check_resumable, drop_damaged_frames, source_reference
from napari_sam2v.types import Calibration, any_given

__all__ = ["COPY_LIMIT_BYTES", "ProgressInfo", "track"]

#: Inputs up to this size (decoded) are copied into the store, except camera videos.
COPY_LIMIT_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class ProgressInfo:
    """Progress of a running :func:`track`, passed to the ``progress`` callback.

    Parameters
    ----------
    done : int
        Frames propagated so far in this run (including skipped, already done ones).
    total : int
        Frames this run visits.
    frame : int
        Index of the frame just propagated.
    written : int
        Frames written to disk so far in this run.
    fps : float
        Propagation speed (frames per second) of this run.
    elapsed_s : float
        Seconds since propagation started.
    eta_s : float
        Estimated seconds left.
    writer_wait_s : float
        Seconds the engine spent waiting for the disk writer (back-pressure).
    """

    done: int
    total: int
    frame: int
    written: int
    fps: float
    elapsed_s: float
    eta_s: float
    writer_wait_s: float


def _frame_range(
    n: int, direction: Direction, start: int | None, end: int | None
) -> tuple[int, int]:
    if end is not None and not 0 <= end < n:
        raise PromptError(f"end frame {end} is outside the video (0..{n - 1})")
    if start is not None and not 0 <= start < n:
        raise PromptError(f"start frame {start} is outside the video (0..{n - 1})")
    if direction is Direction.FORWARD:
        return 0, n - 1 if end is None else end
    if direction is Direction.BACKWARD:
        return 0 if end is None else end, n - 1
    if end is not None:
        raise PromptError(
            "an end frame (--end, end=) cannot be combined with propagating both ways"
        )
    return 0, n - 1


def _make_engine(
    engine: str | Engine, model: str | None, device: str, options: dict[str, Any]
) -> tuple[Engine, bool]:
    if isinstance(engine, Engine):
        return engine, False
    from napari_sam2v.engines import create_engine

    if model is not None:
        options = {"model": model, **options}
    if device != "auto":
        options = {"device": device, **options}
    return create_engine(engine, **options), True


def track(
    video: Any,
    prompts: PromptSet | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    engine: str | Engine = "sam2",
    model: str | None = None,
    device: str = "auto",
    direction: str | Direction = "forward",
    start: int | None = None,
    end: int | None = None,
    channel: int | None = None,
    axes: str | None = None,
    pixel_size: float | None = None,
    unit: str | None = None,
    frame_interval: float | None = None,
    time_unit: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: Callable[[ProgressInfo], None] | None = None,
    cancel: threading.Event | None = None,
    ngff_version: str = "0.4",
    copy_image: bool | None = None,
    keep_masks: bool = False,
    fsync: bool = True,
    queue_size: int = 4,
    **engine_options: Any,
) -> Result:
    """Propagate prompts through a video into an OME-Zarr result store.

    Parameters
    ----------
    video : path, array-like or VideoSource
        Anything :func:`napari_sam2v.io.open_video` accepts.
    prompts : PromptSet or path
        Prompts, or a prompt file (JSON v1 / CSV).
    out : path-like
        The ``.zarr`` store to write.
    engine : str or Engine
        ``"sam2"``, ``"classic"`` or a ready engine (e.g. preloaded by a batch run;
        it is not closed afterwards).
    model, device
        Passed to :func:`~napari_sam2v.engines.create_engine` when ``engine`` is a name
        (``device="auto"`` lets the engine choose).
    direction : {"forward", "backward", "both"}
        Propagation direction from ``start``.
    start : int, optional
        Frame to start from (default: first prompted frame; last one backward).
    end : int, optional
        Last frame to visit, inclusive (default: the end of the video in the
        propagation direction); not allowed with ``direction="both"``.
    channel : int, optional
        Channel of multi-channel data.
    axes : str, optional
        Axis order of data that does not name its axes (``"TYX"``, ``"TYXC"``,
        ``"TCYX"``; see :func:`~napari_sam2v.io.open_video`); recorded in the store.
        Not with a ready ``VideoSource``.
    pixel_size, unit, frame_interval, time_unit : optional
        Physical calibration to record in the store, laid over what the video's
        metadata says (see :meth:`~napari_sam2v.types.Calibration.overridden`): the
        store's OME-Zarr scale, its exports and later measurements use it. A camera
        video usually has none, so give ``pixel_size`` with its ``unit``.
    resume : bool
        Continue a store left by an interrupted run: finished frames are kept and only
        missing frames are written. The prompts must be the same, and so must a
        calibration given here.
    overwrite : bool
        Replace an existing store at ``out`` (never a folder that is not a store).
    progress : callable, optional
        Called as ``progress(ProgressInfo)`` after every propagated frame, on the
        calling thread.
    cancel : threading.Event, optional
        When set, propagation stops after the current frame; finished frames are kept
        and the run can be resumed.
    ngff_version : {"0.4", "0.5"}
        OME-NGFF version of the store.
    copy_image : bool, optional
        Copy the input frames into the store. Default: copy microscopy data and arrays
        up to :data:`COPY_LIMIT_BYTES`; camera videos are referenced (path, size,
        frame count, hash of the first MiB), never copied.
    keep_masks : bool
        Also store each object's own mask so overlaps are kept.
    fsync : bool
        Flush each frame to stable storage before recording it as done.
    queue_size : int
        Frames buffered between engine and writer before the engine waits.
    **engine_options
        Further options of the engine.

    Returns
    -------
    Result
        The opened store (``result.status`` says whether it is complete).

    Raises
    ------
    StoreError
        If ``out`` exists without ``resume``/``overwrite``, resume does not match
        the stored run, or writing fails.
    StoreLockedError
        If another process writes the same store.
    PromptError
        If the prompts do not fit the video.
    InputError
        If the calibration is incomplete (a size without its unit, say) or invalid.
    """
    direction = Direction.parse(direction)
    opened = not isinstance(video, VideoSource)  # then this call closes it at the end
    if axes is not None and not opened:
        raise InputError("axes apply to a path or an array: give them to open_video instead")
    # Clean-ups run in reverse: the store, then the engine, then a video opened here.
    with contextlib.ExitStack() as cleanup:
        source = video
        if opened:
            opening = open_video(video, channel=channel, axes=axes)
            source = cleanup.enter_context(contextlib.closing(opening))
        given = {
            "pixel_size": pixel_size,
            "unit": unit,
            "frame_interval": frame_interval,
            "time_unit": time_unit,
        }
        calibration = source.metadata.calibration.overridden(**given)
        if source.metadata.variable_frame_rate:
            intervals = frame_interval_range(getattr(source, "timestamps", []))
            where = source.metadata.source or "the video"
            own = is_own_interval(frame_interval, calibration.time_unit, intervals)
            note = variable_rate_note(where, intervals, own_times=own)
            warnings.warn(note, UserWarning, stacklevel=2)
        if isinstance(prompts, (str, os.PathLike)):
            prompts = Prompts.load(prompts)
        prompts = Prompts.from_prompt_set(prompts)
        prompts.check_bounds(source.frame_shape, source.n_frames)
        lo, hi = _frame_range(source.n_frames, direction, start, end)
        out = Path(out)
        settings = {
            "direction": direction.value,
            "start": start,
            "end": end,
            "frame_range": [lo, hi],
            "channel": channel,
        }
        eng, owned = _make_engine(engine, model, device, dict(engine_options))
        if owned:
            cleanup.callback(eng.close)
        # Everything that can reject the input runs before the store is created or
        # replaced, so a bad input never costs an existing result (even with overwrite).
        # open_video already applied `channel` unless a ready VideoSource was given.
        eng.set_video(source, channel=None if opened else channel)
        first = _check_start(eng, prompts, direction, start, (lo, hi))
        _check_prompted_frames(eng, prompts)
        store = _open_store(
            out,
            source,
            prompts,
            eng,
            resume=resume,
            overwrite=overwrite,
            copy_image=copy_image,
            channel=channel,
            calibration=calibration if any_given(given) else None,
            ngff_version=ngff_version,
            keep_masks=keep_masks,
            fsync=fsync,
            settings=settings,
        )
        with contextlib.closing(store):
            _run_recorded(
                eng,
                store,
                prompts,
                direction=direction,
                start=start,
                first=first,
                frame_range=(lo, hi),
                progress=progress,
                cancel=cancel,
                queue_size=queue_size,
            )
    return open_result(out)


def _run_recorded(engine: Engine, store: ResultStore, prompts: Prompts, **run: Any) -> None:
    """:func:`_run` with the store's state kept: running, then interrupted or failed."""
    try:
        info = engine.info
        store.set_state(
            "running",
            run={
                "engine": info.engine,
                "model": info.model,
                "model_hash": info.model_hash,
                "device": info.device,
                "random_weights": info.random_weights,
            },
        )
        engine.add_prompts(prompts.prompts)
        _run(engine, store, **run)
    except KeyboardInterrupt:
        _safe_state(store, "interrupted")
        raise
    except BaseException as exc:
        _safe_state(store, "failed", error=f"{type(exc).__name__}: {exc}")
        raise


def _check_start(
    engine: Engine,
    prompts: Prompts,
    direction: Direction,
    start: int | None,
    frame_range: tuple[int, int],
) -> int:
    """The frame the propagation starts on; refused when it would find nothing to follow."""
    frames = prompts.frames()
    first = engine.resolve_start(start, direction, frames)
    lo, hi = frame_range
    if not lo <= first <= hi:
        if start is None:
            raise PromptError(
                f"the prompts begin on frame {first}, outside the frames to track "
                f"({lo}..{hi}): move the end frame, or prompt a frame in that range"
            )
        raise PromptError(f"start frame {start} is outside the frames to track ({lo}..{hi})")
    if direction is Direction.FORWARD and min(frames) > first:
        raise PromptError(
            f"nothing to follow forward from frame {first}: the first prompt is on frame "
            f"{min(frames)}; start there, or propagate backward or both ways"
        )
    if direction is Direction.BACKWARD and max(frames) < first:
        raise PromptError(
            f"nothing to follow backward from frame {first}: the last prompt is on frame "
            f"{max(frames)}; start there, or propagate forward or both ways"
        )
    return first


def _check_prompted_frames(engine: Engine, prompts: Prompts) -> None:
    """Read the prompted frames of float data, which may hold NaN (checked per frame)."""
    if engine.frames.dtype.kind != "f":
        return  # integer pixels are always finite
    for frame in prompts.frames():
        engine.frames.normalized(frame)


def _open_store(
    out: Path,
    source: VideoSource,
    prompts: Prompts,
    engine: Engine,
    *,
    resume: bool,
    overwrite: bool,
    copy_image: bool | None,
    channel: int | None,
    calibration: Calibration | None,
    ngff_version: str,
    keep_masks: bool,
    fsync: bool,
    settings: dict[str, Any],
) -> ResultStore:
    """Create the store, or open it to resume; ``calibration`` is the user's, if any."""
    if resume and out.exists():
        if ResultStore.is_incomplete(out):
            overwrite = True  # an interrupted creation holds no frames
        else:
            store = ResultStore.open(out, fsync=fsync)
            try:
                check_resumable(store, source, prompts, engine, calibration, channel)
                drop_damaged_frames(store)
            except BaseException:
                store.close()
                raise
            return store
    copy = copy_image
    if copy is None:
        copy = source.metadata.kind != "video" and source.nbytes <= COPY_LIMIT_BYTES
    return ResultStore.create(
        out,
        n_frames=source.n_frames,
        frame_shape=source.frame_shape,
        prompts=prompts,
        calibration=calibration or source.metadata.calibration,
        source=source_reference(source, channel),
        image=source if copy else None,
        engine_info=engine.info,
        settings=settings,
        ngff_version=ngff_version,
        keep_masks=keep_masks,
        overwrite=overwrite,
        fsync=fsync,
    )


def _run(
    engine: Engine,
    store: ResultStore,
    *,
    direction: Direction,
    start: int | None,
    first: int,
    frame_range: tuple[int, int],
    progress: Callable[[ProgressInfo], None] | None,
    cancel: threading.Event | None,
    queue_size: int,
) -> None:
    from napari_sam2v.engines.base import propagation_order

    total = len(propagation_order(store.n_frames, first, direction, frame_range))
    object_ids = list(engine.object_ids)
    t0 = time.perf_counter()
    done = 0
    cancelled = False
    with store.writer(queue_size=queue_size) as writer:
        for result in engine.propagate(
            start=start, direction=direction, frame_range=frame_range, cancel=cancel
        ):
            if not store.is_done(result.frame, object_ids):
                writer.put(result)
            done += 1
            if progress is not None:
                elapsed = time.perf_counter() - t0
                fps = done / elapsed if elapsed > 0 else 0.0
                progress(
                    ProgressInfo(
                        done,
                        total,
                        result.frame,
                        writer.written,
                        fps,
                        elapsed,
                        (total - done) / fps if fps else float("inf"),
                        writer.wait_s,
                    )
                )
            if cancel is not None and cancel.is_set():
                cancelled = True
                break
    cancelled = cancelled or (cancel is not None and cancel.is_set())
    lo, hi = frame_range
    missing = [f for f in range(lo, hi + 1) if not store.is_done(f)]
    status = "cancelled" if cancelled else ("complete" if store.frames_done.all() else "partial")
    store.set_state(
        status,
        frames_missing=len(missing),
        writer_wait_s=round(writer.wait_s, 4),
        propagation_s=round(time.perf_counter() - t0, 4),
    )


def _safe_state(store: ResultStore, status: str, **info: Any) -> None:
    try:
        store.set_state(status, **info)
    except StoreError:
        return  # the original error is what matters (e.g. a full disk)
