"""Checks that a store may be resumed with this video, these prompts and this engine.

A resumed run keeps the frames an interrupted run wrote and adds the rest. That is
only right when both runs would have written the same masks: the same file and
channel, the same prompts, the same calibration, and an engine with the same model,
weights and output-changing settings. Anything else would mix two results in one
store without a trace, so it is refused with the reason.

A frame the store records as finished is trusted only while its chunks can be read:
:func:`drop_damaged_frames` makes a resumed run write the others again.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from napari_sam2v.engines.base import Engine
from napari_sam2v.errors import READ_ERRORS, StoreError
from napari_sam2v.io import VideoSource
from napari_sam2v.io.frame_times import frame_interval_range
from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.store.provenance import jsonable
from napari_sam2v.store.result import FINGERPRINT_KEYS, file_fingerprint, same_file
from napari_sam2v.store.result_store import ResultStore
from napari_sam2v.types import Calibration

__all__ = ["RUNTIME_SETTINGS", "check_resumable", "drop_damaged_frames", "source_reference"]

#: Engine settings that change speed or memory but not the masks: they may differ
#: between an interrupted run and its resumption.
RUNTIME_SETTINGS = frozenset({"cache_frames", "embedding_cache_size", "num_threads", "description"})

_REPLACE = "replace the store to start again (--overwrite; overwrite=True in Python)"


def source_reference(video: VideoSource, channel: int | None) -> dict[str, Any]:
    """What the store records about its input: kind, shape, dtype, channel, axes, file.

    Parameters
    ----------
    video : VideoSource
        The input.
    channel : int or None
        The channel tracked, if the input has channels.

    Returns
    -------
    dict
        JSON-safe; a file input adds its resolved path, size and a hash of its
        first MiB; data without axis names adds the ``axes`` it was read with.
    """
    meta = video.metadata
    ref: dict[str, Any] = {
        "kind": meta.kind,
        "shape": list(video.shape),
        "dtype": str(video.dtype),
        "channel": channel,
    }
    if meta.extra.get("array_axes"):
        ref["axes"] = str(meta.extra["array_axes"])
    if meta.variable_frame_rate:
        stamps = np.asarray(getattr(video, "timestamps", []), dtype=np.float64)
        ref["variable_frame_rate"] = frame_interval_range(stamps)
        # when each frame was taken (seconds from the first): measure's times and speeds
        ref["frame_times"] = [round(float(t), 6) for t in stamps - stamps[0]]
    if meta.source:
        src = Path(meta.source)
        ref["path"] = str(src.resolve())
        if src.is_file():
            ref.update(file_fingerprint(src))
    return ref


def check_resumable(
    store: ResultStore,
    source: VideoSource,
    prompts: Prompts,
    engine: Engine,
    calibration: Calibration | None,
    channel: int | None,
) -> None:
    """Refuse to resume ``store`` with another input, prompts, engine or calibration.

    Parameters
    ----------
    store : ResultStore
        The interrupted run's store.
    source : VideoSource
        The video of the resuming run.
    prompts : Prompts
        Its prompts.
    engine : Engine
        Its engine (already holding the video).
    calibration : Calibration or None
        The calibration the user gave, if any.
    channel : int or None
        The channel tracked.

    Raises
    ------
    StoreError
        Naming what differs.
    """
    expected = [source.n_frames, *source.frame_shape]
    if list(store.meta["shape"]) != expected:
        raise StoreError(
            f"{store.path}: cannot resume, the store holds {store.meta['shape']} frames/pixels "
            f"but the video is {expected}"
        )
    if store.prompts != prompts:
        raise StoreError(
            f"{store.path}: cannot resume, the prompts differ from the interrupted run; {_REPLACE}"
        )
    _check_same_engine(store, engine)
    _check_same_source(store, source, channel)
    recorded = store.calibration
    if calibration is not None and calibration != recorded:
        raise StoreError(
            f"{store.path}: cannot resume with calibration {calibration.to_dict()}; the store "
            f"records {recorded.to_dict()}: give the same calibration, or none, to resume "
            "(ResultStore.set_calibration, or napari-sam2v calibrate, changes it afterwards)"
        )


def _output_settings(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in jsonable(settings).items() if k not in RUNTIME_SETTINGS}


def _check_same_engine(store: ResultStore, engine: Engine) -> None:
    """The same engine, model weights and output-changing settings as the stored run."""
    stored = store.meta.get("engine") or {}
    if not stored:
        return  # written without provenance (an old or hand-made store)
    info = engine.info
    where = f"{store.path}: cannot resume"
    if stored.get("engine") and stored["engine"] != info.engine:
        raise StoreError(
            f"{where} with engine {info.engine!r}; the interrupted run used {stored['engine']!r}"
        )
    old_hash, new_hash = stored.get("model_hash") or "", info.model_hash or ""
    if (old_hash and new_hash and old_hash != new_hash) or (
        not (old_hash and new_hash) and (stored.get("model") or "") != (info.model or "")
    ):
        raise StoreError(
            f"{where} with model {info.model!r}; the interrupted run used "
            f"{stored.get('model')!r} (other weights give other masks): resume with that "
            f"model, or {_REPLACE}"
        )
    old = _output_settings(stored.get("settings") or {})
    new = _output_settings(info.settings)
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if changed:
        detail = ", ".join(f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in changed)
        raise StoreError(
            f"{where} with other engine settings ({detail}); resume with the interrupted "
            f"run's settings, or {_REPLACE}"
        )


def _check_same_source(store: ResultStore, source: VideoSource, channel: int | None) -> None:
    """Refuse to resume from another file, channel or axis order than the interrupted run's."""
    recorded = store.meta.get("source") or {}
    if "channel" in recorded and recorded["channel"] != channel:
        raise StoreError(
            f"{store.path}: cannot resume with channel {channel}; the interrupted run "
            f"tracked channel {recorded['channel']}"
        )
    axes = source.metadata.extra.get("array_axes")
    if recorded.get("axes") and axes and recorded["axes"] != axes:
        raise StoreError(
            f"{store.path}: cannot resume with axes {axes!r}; the interrupted run read the "
            f"video as {recorded['axes']!r}"
        )
    if all(k in recorded for k in FINGERPRINT_KEYS) and not same_file(
        recorded, source.metadata.source
    ):
        raise StoreError(
            f"{store.path}: cannot resume, the video is not the file the interrupted run "
            f"tracked ({recorded.get('path')}); resume with that file, or replace the "
            "store to start again"
        )


def drop_damaged_frames(store: ResultStore) -> list[int]:
    """Mark the finished frames whose chunks can no longer be read as not done.

    A crash cannot leave such a frame, since a frame is journalled only after its
    chunks are written, but a failing disk, a bad copy or an edit of the store can. A
    resumed run then writes those frames again instead of trusting the journal; it
    warns naming them. This reads every finished frame once: 3.3 ms per 1080p frame
    with three objects on the 2-core test machine, so 3 s for 1,000 frames. A chunk
    file that was deleted cannot be told apart from a frame without objects, which
    zarr does not write, so it is not found here.

    Parameters
    ----------
    store : ResultStore
        The store about to be resumed.

    Returns
    -------
    list of int
        The frames that will be written again.
    """
    arrays = [store.labels] + ([store.masks] if store.masks is not None else [])
    damaged = []
    for frame in sorted(store.records):
        try:
            for array in arrays:
                array[frame]
        except READ_ERRORS:
            damaged.append(frame)
    for frame in damaged:
        del store.records[frame]
    if damaged:
        shown = ", ".join(str(f) for f in damaged[:10]) + (" ..." if len(damaged) > 10 else "")
        warnings.warn(
            f"{store.path}: {len(damaged)} finished frame(s) can no longer be read "
            f"(damaged chunks: frames {shown}); they are tracked and written again",
            UserWarning,
            stacklevel=2,
        )
    return damaged
