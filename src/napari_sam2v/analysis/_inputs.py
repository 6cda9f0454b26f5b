"""Resolve what :func:`napari_sam2v.analysis.measure` was given into one plain form.

A ``Result`` from the store is recognised by its ``labels`` and ``calibration``
attributes (duck typing, so the store never has to be imported here); anything else
must be a ``(t, y, x)`` integer label array (numpy, dask, zarr or any object with
``shape``, ``dtype`` and integer indexing). Frames are read one at a time.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from napari_sam2v.errors import InputError, VideoReadError, read_errors_as, reading_store
from napari_sam2v.types import Calibration, ObjectInfo

__all__ = [
    "Source",
    "iter_frames",
    "read_frame",
    "resolve_source",
    "select_objects",
]


@dataclass(frozen=True)
class Source:
    """Labels to measure and everything known about them."""

    labels: Any
    calibration: Calibration
    objects: dict[int, ObjectInfo]
    scores: pd.DataFrame | None
    description: str
    #: Frames the tracker wrote (a partial store's others were never tracked); None: all.
    tracked: np.ndarray | None = None
    #: The input video's frame intervals (min, median, max) when its frame rate varies.
    variable_rate: dict[str, float] | None = None
    #: Then also when each frame was taken (seconds from the first), if recorded.
    frame_times: np.ndarray | None = None


def _describe(obj: Any) -> str:
    """Short human description of a labels source, for messages and the sidecar."""
    if hasattr(obj, "labels") and hasattr(obj, "calibration"):
        path = getattr(obj, "path", None)
        return str(path) if path is not None else f"result {type(obj).__name__}"
    shape = tuple(getattr(obj, "shape", ()))
    store = getattr(obj, "store", None)
    if store is not None:
        return f"zarr array {store}/{getattr(obj, 'path', '')} {shape}"
    return f"in-memory {type(obj).__name__} {shape}"


def _check_labels(labels: Any, what: str) -> None:
    shape = getattr(labels, "shape", None)
    dtype = getattr(labels, "dtype", None)
    if shape is None or dtype is None or not hasattr(labels, "__getitem__"):
        raise InputError(
            f"{what}: expected a Result or a (t, y, x) label array, got {type(labels).__name__}"
        )
    if len(shape) != 3:
        raise InputError(f"{what}: labels must have 3 axes (t, y, x), got shape {tuple(shape)}")
    if not (np.issubdtype(np.dtype(dtype), np.integer) or np.dtype(dtype) == np.bool_):
        raise InputError(f"{what}: labels must be integers (object ids), got dtype {dtype}")
    if 0 in shape[1:]:
        raise InputError(f"{what}: labels have an empty frame shape {tuple(shape)}")


def resolve_source(obj: Any) -> Source:
    """Turn a ``Result`` or a label array into a :class:`Source`.

    Parameters
    ----------
    obj : Result or array-like
        A store ``Result`` (``labels``, ``calibration``, ``objects``, ``scores``,
        ``path``) or a ``(t, y, x)`` integer label array.

    Returns
    -------
    Source

    Raises
    ------
    InputError
        When the labels are not a 3-D integer array.
    """
    if hasattr(obj, "labels") and hasattr(obj, "calibration"):
        what = f"result {_describe(obj)}"
        labels = obj.labels
        _check_labels(labels, what)
        calibration = obj.calibration if obj.calibration is not None else Calibration()
        objects = {int(o.id): o for o in (getattr(obj, "objects", None) or [])}
        scores = getattr(obj, "scores", None)
        if scores is not None and not isinstance(scores, pd.DataFrame):
            raise InputError(f"{what}: scores must be a DataFrame, got {type(scores).__name__}")
        done = getattr(obj, "frames_done", None)
        tracked = None if done is None else np.asarray(done, dtype=bool)
        if tracked is not None and (tracked.shape != (labels.shape[0],) or tracked.all()):
            tracked = None
        recorded = (getattr(obj, "metadata", None) or {}).get("source") or {}
        variable = recorded.get("variable_frame_rate")
        times = recorded.get("frame_times")
        if not isinstance(times, list) or len(times) != labels.shape[0]:
            times = None
        return Source(
            labels,
            calibration,
            objects,
            scores,
            _describe(obj),
            tracked,
            variable_rate=dict(variable) if isinstance(variable, dict) else None,
            frame_times=None if times is None else np.asarray(times, dtype=np.float64),
        )
    what = _describe(obj)
    _check_labels(obj, what)
    return Source(obj, Calibration(), {}, None, what)


def read_frame(array: Any, index: int) -> np.ndarray:
    """Read one frame of a numpy, dask, zarr or duck-typed array as numpy."""
    frame = array[index]
    if hasattr(frame, "compute"):
        frame = frame.compute()
    return np.asarray(frame)


def iter_frames(
    labels: Any, image: Any | None, n_frames: int, *, what: str = "the labels"
) -> Generator[tuple[int, np.ndarray, np.ndarray | None], None, None]:
    """Yield ``(t, labels[t], image[t] or None)``, reading one frame ahead.

    The next frame is read (and decompressed, for zarr/dask) in one background thread
    while the caller measures the current one, so at most two frames are in memory.
    Closing the generator stops the read-ahead.

    Raises
    ------
    DamagedStoreError
        If a frame of the labels (of the store ``what`` names) cannot be read.
    VideoReadError
        If a frame of the image cannot be read.
    """

    def read(t: int) -> tuple[np.ndarray, np.ndarray | None]:
        with reading_store(what, f"frame {t} of its labels", frame=True):
            lab = read_frame(labels, t)
        if image is None:
            return lab, None
        with read_errors_as(
            lambda e: VideoReadError(
                f"frame {t} of the intensity image cannot be read ({type(e).__name__}: {e})"
            )
        ):
            return lab, read_frame(image, t)

    if n_frames == 0:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="measure-read") as pool:
        pending = pool.submit(read, 0)
        try:
            for t in range(n_frames):
                lab, img = pending.result()
                if t + 1 < n_frames:
                    pending = pool.submit(read, t + 1)
                yield t, lab, img
        finally:
            pending.cancel()


def select_objects(requested: Iterable[int | ObjectInfo] | None) -> set[int] | None:
    """Object ids to keep (``None`` keeps all).

    Raises
    ------
    InputError
        For an empty selection or an id that is not a positive integer.
    """
    if requested is None:
        return None
    ids: set[int] = set()
    for item in requested:
        value = item.id if isinstance(item, ObjectInfo) else item
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"objects: ids must be positive integers, got {value!r}")
        ids.add(int(value))
    if not ids:
        raise InputError("objects: the list of objects to measure is empty")
    return ids
