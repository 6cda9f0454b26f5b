"""ImageJ metadata of the TIFF export: pixel size and unit, frame interval, page labels.

Fiji reads an ImageJ TIFF's resolution tags (pixels per unit, stored as a ratio of two
32-bit integers), its unit, and one frame interval for the whole stack. Three things
need care: a pixel size so small or large in its unit that the ratio cannot hold it is
written in another length unit; unevenly spaced exported frames get no interval; and
a variable-frame-rate video's frames, which no single interval describes, get none
either, each page's label giving its own time instead.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from napari_sam2v.errors import ExportError
from napari_sam2v.io.frame_times import own_frame_times
from napari_sam2v.types import Calibration, convert_unit

__all__ = ["TIFF_UNITS", "imagej_metadata"]

#: ImageJ's names of the length units it knows.
TIFF_UNITS = {"um": "micron", "nm": "nm", "mm": "mm", "cm": "cm", "m": "m"}

#: Pixels per unit that the resolution ratio holds with room to spare (it is at most
#: 2**32 - 1 over 1, and at least 1 over 2**32 - 1).
_RESOLUTION_RANGE = (1e-9, 1e9)


def _frame_interval(interval: float, idx: list[int]) -> float | None:
    """The time between the exported pages: a multiple for evenly spaced frames."""
    steps = set(np.diff(idx).tolist())
    if len(steps) > 1 or (steps and min(steps) <= 0):
        return None  # uneven or unordered frames have no single interval
    return interval * (steps.pop() if steps else 1)


def _fits(pixel_size: float) -> bool:
    low, high = _RESOLUTION_RANGE
    return low <= 1.0 / pixel_size <= high


def _length(pixel_size: float, unit: str) -> tuple[float, str]:
    """The pixel size in a unit whose resolution ratio holds it (the given one if it does)."""
    if _fits(pixel_size):
        return pixel_size, unit
    sizes = {u: convert_unit(pixel_size, unit, u) for u in TIFF_UNITS}
    known = {u: s for u, s in sizes.items() if s is not None and _fits(s)}
    if not known:
        raise ExportError(
            f"a pixel size of {pixel_size:g} {unit} does not fit a TIFF's resolution tags "
            "in any length unit ImageJ knows: correct the calibration (napari-sam2v "
            "calibrate), or export COCO JSON or PNG masks instead"
        )
    best = min(known, key=lambda u: abs(math.log10(known[u])))
    return known[best], best


def imagej_metadata(
    calibration: Calibration,
    frames: list[int],
    *,
    source: Mapping[str, Any] | None = None,
    where: object = "the store",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """ImageJ metadata and ``tifffile.imwrite`` keywords for the exported ``frames``.

    Parameters
    ----------
    calibration : Calibration
        The calibration to write.
    frames : list of int
        The exported frames, one page each.
    source : mapping, optional
        The store's ``source`` record, with the frame times of a variable-frame-rate
        video.
    where : object
        What is exported, for the warning about a variable frame rate.

    Returns
    -------
    metadata : dict
        ``axes``, page ``Labels`` and, when calibrated, ``unit``, ``finterval`` and
        ``tunit``.
    kwargs : dict
        ``resolution`` when the pixel size is known.

    Raises
    ------
    ExportError
        If the pixel size fits no length unit's resolution tags.
    """
    recorded = source or {}
    times = own_frame_times(
        recorded.get("frame_times"), recorded.get("variable_frame_rate"), calibration
    )
    metadata: dict[str, Any] = {"axes": "TYX", "Labels": [f"frame {i}" for i in frames]}
    if times is not None:
        unit = calibration.time_unit
        metadata["Labels"] = [f"frame {i} ({times[i]:.6g} {unit})" for i in frames]
        warnings.warn(
            f"{where}: the video has a variable frame rate, and an ImageJ TIFF has one "
            "frame interval for every frame, so none is written; each page's label gives "
            "its frame and time",
            UserWarning,
            stacklevel=3,
        )
    elif calibration.frame_interval is not None:
        interval = _frame_interval(calibration.frame_interval, frames)
        if interval is not None:
            metadata.update(finterval=interval, tunit=calibration.time_unit)
    kwargs: dict[str, Any] = {}
    if calibration.pixel_size is not None:
        size, unit = _length(calibration.pixel_size, calibration.unit)
        metadata["unit"] = TIFF_UNITS.get(unit, unit)
        kwargs["resolution"] = (1.0 / size, 1.0 / size)
    return metadata, kwargs
