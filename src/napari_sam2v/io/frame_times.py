"""When the frames of a video were taken: variable frame rates.

Phone and action cameras often write videos whose frames are not evenly spaced. The
store records such a video's frame times (``source.frame_times``, seconds from the
first frame) and its shortest, median and longest interval. Measurements and exports
use those times while the calibration's frame interval is the video's own median
interval; an interval the user gives that differs from it replaces them with one
interval for every frame (:func:`own_frame_times`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from napari_sam2v.types import Calibration, convert_unit

__all__ = ["frame_interval_range", "is_own_interval", "own_frame_times", "variable_rate_note"]


def frame_interval_range(timestamps: Any) -> dict[str, float]:
    """The shortest, median and longest interval between frames (seconds).

    Parameters
    ----------
    timestamps : array-like
        The frames' presentation times in seconds (:attr:`PyAVSource.timestamps`).

    Returns
    -------
    dict
        ``min``, ``median`` and ``max``; empty for fewer than two frames.
    """
    steps = np.diff(np.asarray(timestamps, dtype=np.float64))
    if steps.size == 0:
        return {}
    return {
        "min": round(float(steps.min()), 6),
        "median": round(float(np.median(steps)), 6),
        "max": round(float(steps.max()), 6),
    }


def variable_rate_note(where: object, intervals: dict[str, float], *, own_times: bool) -> str:
    """What a variable frame rate means for measured times and speeds (a warning text).

    ``own_times``: the measurements use the video's own frame times (the store
    records them); otherwise one interval for every frame (a frame interval given).
    """
    span = (
        f" (its frames are {intervals['min']:g}-{intervals['max']:g} s apart)"
        if {"min", "max"} <= set(intervals)
        else ""
    )
    if own_times:
        return (
            f"{where}: the video has a variable frame rate{span}; times, speeds and MSD "
            "use its own frame times (MSD pairs are grouped by their time apart, in steps "
            "of the median interval)"
        )
    return (
        f"{where}: the video has a variable frame rate{span}; times, speeds and MSD lag "
        "times use one interval for every frame (the one given), so they are wrong where "
        "the real intervals differ. Leave the frame interval to the video, or re-encode "
        "it at a constant frame rate (for example: ffmpeg -i in.mp4 -fps_mode cfr -r 30 "
        "out.mp4)"
    )


def is_own_interval(
    interval: float | None, time_unit: str, intervals: Mapping[str, float] | None
) -> bool:
    """Whether ``interval`` (in ``time_unit``) is the video's median frame interval.

    ``None`` (no interval given) counts as the video's own. ``intervals`` is the
    recorded ``{min, median, max}`` in seconds.
    """
    if interval is None:
        return True
    median = (intervals or {}).get("median")
    per_second = convert_unit(1.0, "s", time_unit)
    if median is None or per_second is None:
        return False
    return math.isclose(interval, median * per_second, rel_tol=1e-6)


def own_frame_times(
    times: Any, intervals: Mapping[str, float] | None, calibration: Calibration
) -> np.ndarray | None:
    """The video's own frame times in ``calibration.time_unit``, or ``None``.

    Parameters
    ----------
    times : array-like or None
        When each frame was taken, in seconds (the store's ``source.frame_times``).
    intervals : mapping or None
        The video's ``{min, median, max}`` frame interval in seconds (the store's
        ``source.variable_frame_rate``).
    calibration : Calibration
        The calibration in force.

    Returns
    -------
    ndarray or None
        The time of every frame, when the store records them and the calibration's
        frame interval is the video's median interval; otherwise ``None`` (evenly
        spaced frames, or an interval that replaces the video's times).
    """
    interval = calibration.frame_interval
    if not isinstance(times, (list, np.ndarray)) or interval is None:
        return None
    if not is_own_interval(interval, calibration.time_unit, intervals):
        return None
    per_second = convert_unit(1.0, "s", calibration.time_unit)
    assert per_second is not None  # is_own_interval converted it
    return np.asarray(times, dtype=np.float64) * per_second
