"""Helpers shared by the sample generators: prompt files and interior click points."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_sam2v.errors import InputError
from napari_sam2v.types import ObjectInfo

__all__ = ["interior_points", "prompts_json_dict", "write_prompts_json"]

PROMPTS_FORMAT_VERSION = 1


def interior_points(
    mask: np.ndarray, n: int = 1, *, min_separation: float = 0.0
) -> list[list[int]]:
    """Return up to ``n`` click points deep inside a binary mask.

    The first point is the pixel furthest from the mask boundary (maximum of the
    Euclidean distance transform, ties broken by raster order). Each further point is
    the deepest pixel at least ``min_separation`` pixels away from the points already
    chosen.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
        The object's visible pixels.
    n : int, optional
        Number of points wanted.
    min_separation : float, optional
        Minimum Euclidean distance, in pixels, between returned points.

    Returns
    -------
    list of [x, y]
        Pixel coordinates (``x`` = column, ``y`` = row), at most ``n`` of them.

    Raises
    ------
    InputError
        If the mask is empty or not two-dimensional.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise InputError(f"interior_points: mask must be 2-D, got shape {mask.shape}")
    if not mask.any():
        raise InputError("interior_points: the mask is empty, no interior point exists")
    # Pad so that pixels on the image border count as boundary pixels too.
    depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    rows, cols = np.indices(mask.shape)
    chosen: list[list[int]] = []
    for _ in range(n):
        allowed = depth > 0
        for x, y in chosen:
            allowed &= (cols - x) ** 2 + (rows - y) ** 2 >= min_separation**2
        if not allowed.any():
            break
        flat = int(np.argmax(np.where(allowed, depth, -1.0)))
        row, col = np.unravel_index(flat, mask.shape)
        chosen.append([int(col), int(row)])
    return chosen


def prompts_json_dict(
    objects: Sequence[ObjectInfo], prompts: Sequence[dict[str, object]]
) -> dict[str, object]:
    """Build a version-1 prompts JSON document.

    Parameters
    ----------
    objects : sequence of ObjectInfo
        The prompted objects.
    prompts : sequence of dict
        Entries with ``frame``, ``object`` and ``points`` + ``labels`` and/or ``box``.

    Returns
    -------
    dict
        ``{"version": 1, "objects": [...], "prompts": [...]}``.
    """
    return {
        "version": PROMPTS_FORMAT_VERSION,
        "objects": [{"id": o.id, "name": o.name, "color": o.color} for o in objects],
        "prompts": [dict(p) for p in prompts],
    }


def write_prompts_json(
    path: Path, objects: Sequence[ObjectInfo], prompts: Sequence[dict[str, object]]
) -> Path:
    """Write a version-1 prompts JSON file (see :func:`prompts_json_dict`).

    Parameters
    ----------
    path : Path
        Destination file; its parent folder must exist.
    objects : sequence of ObjectInfo
        The prompted objects.
    prompts : sequence of dict
        The prompt entries.

    Returns
    -------
    Path
        ``path``.
    """
    text = json.dumps(prompts_json_dict(objects, prompts), indent=2)
    Path(path).write_text(text + "\n", encoding="utf-8")
    return Path(path)
