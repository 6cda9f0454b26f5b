"""The lazy frame source shared by every reader: :class:`VideoSource` and its metadata."""

from __future__ import annotations

import hashlib
import math
import sys
import threading
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_sam2v.errors import FrameIndexError, InputError
from napari_sam2v.types import Calibration, canonical_unit, convert_unit

__all__ = ["VideoMetadata", "VideoSource", "pixel_fields"]


@dataclass(frozen=True)
class VideoMetadata:
    """What a reader knows about a video besides its pixels.

    Parameters
    ----------
    source : str or None
        Path of the file or folder, or ``None`` for in-memory arrays.
    kind : str
        Reader that produced the source: ``"video"``, ``"tiff"``, ``"folder"``,
        ``"zarr"`` or ``"array"``.
    fps : float or None
        Frames per second, when known.
    frame_interval : float or None
        Time between frames in ``time_unit``, when known.
    time_unit : str
        Unit of ``frame_interval`` (``"frame"`` when unknown).
    pixel_size : float or None
        Pixel edge length in ``unit``, when known.
    unit : str
        Unit of ``pixel_size`` (``"px"`` when unknown).
    axes : str
        Axes of the source *after* reading, ``"tyx"`` or ``"tyxc"``.
    variable_frame_rate : bool
        Whether the frames are not evenly spaced in time (videos only).
    extra : dict
        Reader-specific details (codec, original axes, ...).
    """

    source: str | None = None
    kind: str = "array"
    fps: float | None = None
    frame_interval: float | None = None
    time_unit: str = "frame"
    pixel_size: float | None = None
    unit: str = "px"
    axes: str = "tyx"
    variable_frame_rate: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def calibration(self) -> Calibration:
        """The physical calibration as a :class:`~napari_sam2v.types.Calibration`."""
        pixel = _positive(self.pixel_size)
        interval = _positive(self.frame_interval)
        return Calibration(
            pixel_size=pixel,
            unit=self.unit if pixel is not None else "px",
            frame_interval=interval,
            time_unit=self.time_unit if interval is not None else "frame",
        )


def _positive(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) and value > 0 else None


def _every_frame(rest: tuple[Any, ...]) -> tuple[Any, ...]:
    """The index ``[:, *rest]`` of a stack of frames (``rest`` indexes within a frame)."""
    return (slice(None), *rest)


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the code that opened the data.

    For a warning raised by the caller of this function: the first frame outside
    :mod:`napari_sam2v.io`.
    """
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(
        "napari_sam2v.io"
    ):
        frame = frame.f_back
        level += 1
    return level


def pixel_fields(
    size_y: float | None, size_x: float | None, unit: str, name: str, *, unit_y: str | None = None
) -> dict[str, Any]:
    """:class:`VideoMetadata` fields for pixels of ``size_y`` x ``size_x`` ``unit``.

    Square pixels (sizes within 1 %, or no y size) give ``pixel_size`` (the x size) and
    ``unit``. Non-square pixels give no ``pixel_size`` -- measurements then stay in
    pixels instead of being wrong along one axis -- but keep both sizes in
    ``extra["pixel_size_yx"]`` and ``extra["pixel_unit"]``, with a ``UserWarning``.

    Parameters
    ----------
    size_y, size_x : float or None
        Pixel height and width; no calibration when ``size_x`` is not a positive number.
    unit : str
        Unit of ``size_x`` (and of ``size_y`` unless ``unit_y`` is given).
    name : str
        File or layer named in the warning.
    unit_y : str, optional
        Unit of ``size_y`` when it differs from ``unit``; converted when known.

    Returns
    -------
    dict
        Keyword arguments for :class:`VideoMetadata` (possibly empty).
    """
    if size_x is None or not math.isfinite(size_x) or size_x <= 0:
        return {}
    unit = canonical_unit(unit)
    if size_y is not None and unit_y is not None and canonical_unit(unit_y) != unit:
        size_y = convert_unit(size_y, unit_y, unit)
    if size_y is None or not math.isfinite(size_y) or size_y <= 0:
        size_y = size_x
    if math.isclose(size_y, size_x, rel_tol=0.01):
        return {"pixel_size": float(size_x), "unit": unit}
    warnings.warn(
        f"{name}: pixels are not square ({size_y:g} x {size_x:g} {unit}, y x x); napari-sam2v "
        "measures square pixels only, so the pixel size is left out of the calibration and "
        "measurements are in pixels. Resample the data to square pixels (e.g. Fiji: Image > "
        "Scale), or give --pixel-size / pixel_size= to set one size yourself.",
        UserWarning,
        stacklevel=_caller_stacklevel(),
    )
    return {"extra": {"pixel_size_yx": [float(size_y), float(size_x)], "pixel_unit": unit}}


class VideoSource(ABC):
    """A lazy, frame-indexed video with axes ``(t, y, x)`` or ``(t, y, x, c)``.

    Indexing with an integer reads one frame; slices and tuples are supported so
    that the source can back a dask array (see :meth:`to_dask`). Nothing is read
    until a frame is requested.
    """

    metadata: VideoMetadata

    def __init__(self, shape: tuple[int, ...], dtype: Any, metadata: VideoMetadata) -> None:
        self._shape = tuple(int(s) for s in shape)
        self._dtype = np.dtype(dtype)
        self.metadata = metadata
        self._lock = threading.RLock()

    @property
    def shape(self) -> tuple[int, ...]:
        """``(t, y, x)`` or ``(t, y, x, c)``."""
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        """Pixel dtype of the frames."""
        return self._dtype

    @property
    def ndim(self) -> int:
        """Number of axes (3 or 4)."""
        return len(self._shape)

    @property
    def stored_axes(self) -> str:
        """The data's axes in their stored order, single-entry axes left out.

        ``"TYX"``, ``"TYXC"`` or ``"TCYX"`` (``C`` when the data has several channels,
        even when one is kept): what ``open_video(..., axes=...)`` must agree with for
        a file that names its axes.
        """
        return "TYXC" if self.ndim == 4 else "TYX"

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return self._shape[0]

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(height, width)`` of a frame."""
        return self._shape[1], self._shape[2]

    @property
    def nbytes(self) -> int:
        """Size of the decoded video in bytes."""
        return int(np.prod(self._shape)) * self._dtype.itemsize

    def __len__(self) -> int:
        return self._shape[0]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(source={self.metadata.source!r}, shape={self.shape}, "
            f"dtype={self.dtype})"
        )

    def _frame_index(self, index: Any) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise InputError(f"frame index must be an integer, got {index!r}")
        n = self._shape[0]
        if not -n <= index < n:
            raise FrameIndexError(
                f"frame {index} is out of range for {self._name()} ({n} frames, 0..{n - 1})"
            )
        return int(index) % n

    def _name(self) -> str:
        return self.metadata.source or "the array"

    def __getitem__(self, key: Any) -> np.ndarray:
        rest: tuple[Any, ...] = ()
        if isinstance(key, tuple):
            if not key:
                raise InputError("empty index")
            key, rest = key[0], key[1:]
        if isinstance(key, slice):
            frames = [self._read_checked(i) for i in range(*key.indices(self._shape[0]))]
            out = np.stack(frames) if frames else np.empty((0, *self._shape[1:]), dtype=self._dtype)
            return out[_every_frame(rest)] if rest else out
        if isinstance(key, (list, np.ndarray)):
            out = np.stack([self._read_checked(self._frame_index(int(i))) for i in key])
            return out[_every_frame(rest)] if rest else out
        frame = self._read_checked(self._frame_index(key))
        return frame[rest] if rest else frame

    def _read_checked(self, index: int) -> np.ndarray:
        with self._lock:
            frame = np.asarray(self._read(index))
        if frame.shape != self._shape[1:]:
            raise InputError(
                f"{self._name()}: frame {index} has shape {frame.shape}, expected {self._shape[1:]}"
            )
        return frame.astype(self._dtype, copy=False)

    @abstractmethod
    def _read(self, index: int) -> np.ndarray:
        """Read frame ``index`` (already validated, non-negative)."""

    def to_dask(self) -> Any:
        """A dask array view of the video with one chunk per frame.

        Returns
        -------
        dask.array.Array
        """
        import dask.array as da

        token = hashlib.sha1(
            f"{self.metadata.source}|{self._shape}|{self._dtype}|{id(self)}".encode()
        ).hexdigest()[:16]
        chunks = (1, *self._shape[1:])
        return da.from_array(
            self, chunks=chunks, name=f"sam2v-video-{token}", fancy=False, asarray=True
        )

    def close(self) -> None:  # noqa: B027 - optional hook, default does nothing
        """Release open file handles (the source may reopen them on demand)."""

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_lock"] = None  # locks do not pickle (dask.distributed ships sources)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
