"""Provenance helpers of the result store: metadata loading, versions, JSON hygiene."""

from __future__ import annotations

import datetime as _dt
import sys
from pathlib import Path
from typing import Any

import numpy as np

from napari_sam2v.errors import StoreError, StoreVersionError
from napari_sam2v.store import layout

__all__ = ["jsonable", "load_store_meta", "now", "package_versions", "rgba"]

_VERSIONED = (
    "napari-sam2v",
    "numpy",
    "zarr",
    "ome-zarr",
    "dask",
    "torch",
    "transformers",
    "scikit-image",
    "av",
    "tifffile",
)


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages that influence results."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in _VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def load_store_meta(path: Path) -> tuple[Any, dict[str, Any]]:
    """Open a store's root group read-only and return it with its provenance dict.

    Raises
    ------
    StoreError
        If ``path`` is not a napari-sam2v result store.
    StoreVersionError
        If it was written by a newer format version.
    """
    import zarr

    if not path.is_dir():
        raise StoreError(f"{path}: no result store here")
    try:
        root = zarr.open_group(str(path), mode="r")
    except Exception as exc:
        raise StoreError(f"{path}: not a readable zarr store ({exc})") from exc
    meta = dict(root.attrs).get(layout.META_KEY)
    if not isinstance(meta, dict) or not isinstance(meta.get("format_version"), int):
        raise StoreError(
            f"{path}: not a napari-sam2v result store (no '{layout.META_KEY}' metadata)"
        )
    if meta["format_version"] > layout.FORMAT_VERSION:
        raise StoreVersionError(
            f"{path}: the store has format version {meta['format_version']}, newer than this "
            f"napari-sam2v understands ({layout.FORMAT_VERSION}); update napari-sam2v"
        )
    return root, meta


def now() -> str:
    """The current UTC time as an ISO 8601 string (seconds)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def rgba(color: str) -> list[int]:
    """``#rrggbb`` to an opaque ``[r, g, b, 255]`` list (the NGFF ``image-label`` form)."""
    return [int(color[i : i + 2], 16) for i in (1, 3, 5)] + [255]


def jsonable(value: Any) -> Any:
    """Make settings JSON-safe (paths and numpy scalars to plain values)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, np.generic):
        return jsonable(value.item())
    return str(value)
