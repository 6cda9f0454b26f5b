"""Rewriting the calibration of an existing result store.

A store records its calibration twice: in napari-sam2v's provenance (which
``measure`` and the exports read) and as the OME-Zarr ``scale`` and axis units of the
label image and of the copied frames (which napari, Fiji and other NGFF readers
read). :func:`write_calibration` rewrites both, so that the pixel size found out after
a run reaches every reader without tracking again.

Each metadata file is replaced atomically, labels first and the root (provenance and
copied frames' scale, one file) last: a crash in between leaves every file readable,
the provenance still naming the old calibration, and running the same call again
finishes the change. The label data, prompts and progress journal are not touched.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_sam2v.errors import StoreError
from napari_sam2v.store import layout
from napari_sam2v.store.provenance import now
from napari_sam2v.types import Calibration

if TYPE_CHECKING:  # pragma: no cover
    from napari_sam2v.store.result_store import ResultStore

__all__ = ["write_calibration"]

#: Provenance key listing earlier calibrations, oldest first.
HISTORY_KEY = "calibration_history"


def write_calibration(store: ResultStore, calibration: Calibration) -> Calibration:
    """Record ``calibration`` in an open store: provenance and OME-Zarr scales.

    Parameters
    ----------
    store : ResultStore
        The store, opened for writing (its lock held).
    calibration : Calibration
        The new calibration. Lengths and times already measured are not stored, so
        later ``measure`` runs, exports and viewers use it at once.

    Returns
    -------
    Calibration
        The calibration the store recorded before.

    Raises
    ------
    StoreError
        If the metadata cannot be read or written; what was written so far stays
        readable (see the module docstring).
    """
    if not isinstance(calibration, Calibration):
        raise TypeError(f"calibration must be a Calibration, got {type(calibration).__name__}")
    previous = store.calibration
    zarr_fmt = layout.zarr_format(store.meta.get("ngff_version", "0.4"))
    labels_dir = store.path / "labels" / str(store.meta["labels_name"])
    meta = dict(store.meta)
    meta["calibration"] = calibration.to_dict()
    if calibration != previous:
        entry = {"calibration": previous.to_dict(), "replaced": now()}
        meta[HISTORY_KEY] = [*list(meta.get(HISTORY_KEY) or []), entry]
    channel = (meta.get("image") or {}).get("axes") == "tcyx"

    def root_attrs(attrs: dict[str, Any]) -> None:
        if meta.get("image") is not None:
            _rescale(attrs, calibration, channel=channel)
        attrs[layout.META_KEY] = meta

    try:
        _update_attrs(labels_dir, zarr_fmt, lambda a: _rescale(a, calibration, channel=False))
        _update_attrs(store.path, zarr_fmt, root_attrs)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{store.path}: cannot rewrite the calibration ({exc})") from exc
    store.meta = meta
    return previous


def _rescale(attrs: dict[str, Any], calibration: Calibration, *, channel: bool) -> None:
    """Set the scale and axes of every NGFF multiscale in a group's attributes."""
    ngff = attrs["ome"] if isinstance(attrs.get("ome"), dict) else attrs
    for multiscale in ngff["multiscales"]:
        multiscale["axes"] = layout.ngff_axes(calibration, channel=channel)
        for dataset in multiscale["datasets"]:
            for transform in dataset["coordinateTransformations"]:
                if transform.get("type") == "scale":
                    transform["scale"] = layout.ngff_scale(calibration, channel=channel)


def _update_attrs(group: Path, zarr_fmt: int, update: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``update`` to a zarr group's attributes and replace the file atomically."""
    if zarr_fmt == 2:
        path = group / ".zattrs"
        attrs = json.loads(path.read_text(encoding="utf-8"))
        update(attrs)
        layout.atomic_write_json(path, attrs)
        return
    path = group / "zarr.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    update(document.setdefault("attributes", {}))
    layout.atomic_write_json(path, document)
