"""Exports of a result: ImageJ label TIFF, PNG sequences and COCO JSON (RLE).

Object names are free text: they never form paths on their own. File names use the
object id plus a sanitised name (letters, digits, ``-``, ``_``, ``.``), and every
output path is checked to stay inside the output folder.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_sam2v._frame_ranges import describe_ranges, frame_ranges
from napari_sam2v.engines.base import score_probability
from napari_sam2v.errors import (
    ExportError,
    Sam2vError,
    StoreError,
    reading_store,
)
from napari_sam2v.io.rle import rle_encode
from napari_sam2v.store.imagej import imagej_metadata
from napari_sam2v.store.layout import atomic_write_json, read_json
from napari_sam2v.store.result import Result, open_result
from napari_sam2v.types import Calibration, ObjectInfo

__all__ = ["export_coco", "export_png", "export_tiff", "safe_name"]


def _as_result(result: Result | str | os.PathLike[str]) -> Result:
    return result if isinstance(result, Result) else open_result(result)


def _outside_store(result: Result, out: Path) -> Path:
    """``out``, refused when it lies inside the store (its labels group, say)."""
    if result.contains(out):
        raise ExportError(
            f"{out} is inside the result store {result.path}: export next to it instead "
            "(nothing is written into a store but its own data)"
        )
    return out


def _read(result: Result, array: Any, t: int, what: str = "its labels") -> np.ndarray:
    """Frame ``t`` of one of the store's arrays; a damaged store is said so."""
    with reading_store(result.path, f"frame {t} of {what}", frame=True):
        return np.asarray(array[t])


def safe_name(name: str, *, max_length: int = 48) -> str:
    """A file-name-safe version of a free-text object name.

    Examples
    --------
    >>> safe_name("../../etc/passwd")
    'etc_passwd'
    >>> safe_name("Parrotfish #1")
    'Parrotfish_1'
    """
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")
    cleaned = re.sub(r"\.{2,}", "_", cleaned)[:max_length].strip("._-")
    return cleaned or "object"


def _make_dir(folder: Path) -> Path:
    """Create an export folder, or say why it cannot be (a file in the way, no rights)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{folder}: cannot create the output folder ({exc})") from exc
    return folder


def _inside(out_dir: Path, path: Path) -> Path:
    resolved = path.resolve()
    if not resolved.is_relative_to(out_dir.resolve()):
        raise StoreError(f"refusing to write {path}: outside the output folder {out_dir}")
    return path


def _file_in(path: str | os.PathLike[str], name: str) -> Path:
    """``path``, or ``path / name`` when ``path`` is a folder (or ends with a separator)."""
    out = Path(path)
    if out.is_dir() or str(path).endswith(("/", os.sep)):
        return out / name
    return out


def _frames(result: Result, frames: Sequence[int] | None) -> list[int]:
    if frames is None:
        return list(range(result.n_frames))
    bad = [f for f in frames if not 0 <= int(f) < result.n_frames]
    if bad:
        raise StoreError(f"frames {bad} are outside the result (0..{result.n_frames - 1})")
    return [int(f) for f in frames]


def warn_untracked(result: Result, frames: list[int]) -> None:
    """Warn when exported frames were never tracked: written empty, they read as absence."""
    skipped = np.zeros(result.n_frames, dtype=bool)
    skipped[frames] = True
    skipped &= ~np.asarray(result.frames_done, dtype=bool)
    if skipped.any():
        warnings.warn(
            f"{result.path} is not complete ({result.status}): frames "
            f"{describe_ranges(frame_ranges(skipped))} were never tracked and are exported "
            "empty, which is not the objects being absent",
            UserWarning,
            stacklevel=3,
        )


#: Largest label id a float32 TIFF holds exactly.
_FLOAT32_EXACT = 2**24


def export_tiff(
    result: Result | str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    frames: Sequence[int] | None = None,
    calibration: Calibration | None = None,
) -> Path:
    """Write the labels as an ImageJ-compatible TIFF stack (axes ``TYX``).

    Pixel size, unit and frame interval are written as ImageJ metadata so that Fiji
    shows physical units. Label ids above 65535 are written as float32 (exact up to
    2**24, larger ids are refused), since ImageJ has no 32-bit integer type. For a
    subset of evenly spaced frames the frame interval is the spacing times the
    store's interval; unevenly spaced frames get no interval (each page's label
    names its frame). The file is written under a temporary name and renamed when
    complete.

    Parameters
    ----------
    result : Result or path
        The result (or its store path).
    path : path-like
        Output ``.tif`` file, or a folder to write ``labels.tif`` into.
    frames : sequence of int, optional
        Frames to export (default: all).
    calibration : Calibration, optional
        Written instead of the store's calibration, for example the one the tables
        were measured with (:attr:`Measurements.calibration`).

    Returns
    -------
    Path
    """
    import tifffile

    res = _as_result(result)
    out = _outside_store(res, _file_in(path, "labels.tif"))
    idx = _frames(res, frames)
    array = res.labels_array(writable=False)
    dtype = np.uint16 if array.dtype.itemsize <= 2 else np.float32
    too_large = [o.id for o in res.objects if o.id > _FLOAT32_EXACT]
    if dtype == np.float32 and too_large:
        raise StoreError(
            f"object ids {too_large} are above 2**24, which a float32 ImageJ TIFF cannot "
            "hold exactly: export COCO JSON instead"
        )
    cal = calibration or res.calibration
    recorded = res.metadata.get("source") or {}
    metadata, kwargs = imagej_metadata(cal, idx, source=recorded, where=res.path)
    warn_untracked(res, idx)

    def pages() -> Iterator[np.ndarray]:
        for t in idx:
            page = _read(res, array, t)
            if dtype == np.float32 and page.size and int(page.max()) > _FLOAT32_EXACT:
                raise StoreError(
                    f"frame {t} holds label {int(page.max())}, above 2**24, which a float32 "
                    "ImageJ TIFF cannot hold exactly: export COCO JSON instead"
                )
            yield page.astype(dtype, copy=False)

    _make_dir(out.parent)
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        tifffile.imwrite(
            partial,
            data=pages(),
            shape=(len(idx), *res.shape[1:]),
            dtype=dtype,
            imagej=True,
            metadata=metadata,
            compression=None,
            **kwargs,
        )
        os.replace(partial, out)
    except Sam2vError:
        raise
    except OSError as exc:
        raise StoreError(f"{out}: cannot write the TIFF ({exc})") from exc
    finally:
        with contextlib.suppress(OSError):  # a read-only folder: nothing was written
            partial.unlink(missing_ok=True)
    return out


def _write_png(path: Path, data: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(data).save(path, format="PNG", optimize=False)


def export_png(
    result: Result | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    mode: str = "instance",
    frames: Sequence[int] | None = None,
) -> list[Path]:
    """Write a PNG sequence: an instance map per frame, or one mask per object.

    Parameters
    ----------
    result : Result or path
        The result (or its store path).
    out_dir : path-like
        Output folder (created).
    mode : {"instance", "objects"}
        ``"instance"``: ``frame_000000.png``, 16-bit for every frame, pixel value =
        object id (ids above 65535 do not fit a PNG and are refused).
        ``"objects"``: a folder ``<id>_<name>/`` per object with 8-bit 0/255 masks
        (from the per-object masks when the store kept them, so overlaps survive).
    frames : sequence of int, optional
        Frames to export (default: all).

    Returns
    -------
    list of Path
        The written files. Each folder gets a record of its frame files
        (:data:`PNG_EXPORT_RECORD`); frame files an earlier export recorded there and
        this one did not write are removed, so a folder always holds one export.

    Raises
    ------
    ExportError
        If a folder to write holds frame PNGs that no export wrote (nothing is
        replaced).
    StoreError
        If ids above 65535 are asked for as a 16-bit instance map.
    """
    if mode not in ("instance", "objects"):
        raise StoreError(f"unknown PNG export mode {mode!r}: use 'instance' or 'objects'")
    res = _as_result(result)
    array = res.labels_array(writable=False)
    if mode == "instance" and array.dtype.itemsize > 2:
        raise StoreError(
            "object ids above 65535 do not fit a 16-bit PNG instance map: export a "
            "TIFF, COCO JSON or per-object PNG masks instead"
        )
    root = _make_dir(_outside_store(res, Path(out_dir)))
    idx = _frames(res, frames)
    warn_untracked(res, idx)
    masks = _mask_array(res)
    names = {obj.id: obj.name for obj in res.objects}
    folders: dict[int, Path] = {}
    earlier: dict[Path, set[str]] = {}

    def folder_of(oid: int) -> Path:
        """The object's folder; an id painted by hand gets one too, blank before it shows."""
        if oid not in folders:
            name = safe_name(names.get(oid) or f"object {oid}")
            folder = _inside(root, root / f"{oid:03d}_{name}")
            earlier[folder] = _earlier_export(folder)
            folder.mkdir(exist_ok=True)
            folders[oid] = folder
        return folders[oid]

    if mode == "instance":
        earlier[root] = _earlier_export(root)
    else:
        for oid in names:
            folder_of(oid)
    written: list[Path] = []
    done: list[int] = []
    for t in idx:
        labels = _read(res, array, t)
        if mode == "instance":
            path = _inside(root, root / f"frame_{t:06d}.png")
            _write_png(path, labels.astype(np.uint16, copy=False))
            written.append(path)
            continue
        stack = _read(res, masks, t, "its kept masks") if masks is not None else None
        frame_masks = _frame_masks(labels, stack, res.objects)
        for oid in sorted(set(folders) | set(frame_masks)):
            if oid not in folders:  # first seen on this frame: blank on the frames before
                blank = np.zeros(labels.shape, np.uint8)
                for before in done:
                    path = folder_of(oid) / f"frame_{before:06d}.png"
                    _write_png(path, blank)
                    written.append(path)
            mask = frame_masks.get(oid, np.zeros(labels.shape, dtype=bool))
            path = _inside(root, folder_of(oid) / f"frame_{t:06d}.png")
            _write_png(path, mask.astype(np.uint8) * 255)
            written.append(path)
        done.append(t)
    _finish_export(earlier, written)
    return written


_FRAME_PNG = re.compile(r"frame_\d{6}\.png")
#: In every folder a PNG export writes: the frame files it wrote (JSON list).
PNG_EXPORT_RECORD = ".napari-sam2v-png-export.json"


def _earlier_export(folder: Path) -> set[str]:
    """The frame PNGs an earlier export recorded in ``folder``; refuse anyone else's.

    Raises
    ------
    ExportError
        If ``folder`` holds frame PNGs that no export of this package wrote (a
        folder of frames extracted from a video, say): they are not replaced.
    """
    if not folder.is_dir():
        return set()
    present = {p.name for p in folder.iterdir() if _FRAME_PNG.fullmatch(p.name)}
    recorded = read_json(folder / PNG_EXPORT_RECORD)
    ours = {str(name) for name in recorded} if isinstance(recorded, list) else set()
    foreign = sorted(present - ours)
    if foreign:
        raise ExportError(
            f"{folder} holds {len(foreign)} frame PNGs that no napari-sam2v export wrote "
            f"({foreign[0]}, ...): export into an empty folder or another one (they are not "
            "replaced)"
        )
    return ours


def _finish_export(earlier: dict[Path, set[str]], written: list[Path]) -> None:
    """Record each folder's frames; remove those of an earlier, longer export."""
    for folder, ours in earlier.items():
        now = sorted(p.name for p in written if p.parent == folder)
        for stale in ours - set(now):
            (folder / stale).unlink(missing_ok=True)
        atomic_write_json(folder / PNG_EXPORT_RECORD, now)


def _frame_masks(
    labels: np.ndarray, stack: np.ndarray | None, objects: Sequence[ObjectInfo]
) -> dict[int, np.ndarray]:
    """Each id's mask on one frame, also an id painted by hand that is no object.

    Without kept masks (``stack``), the labels. With them, the kept masks wherever the
    labels still agree with them (background where no mask covers, and a covering
    object's id), so overlaps survive; and the labels wherever they were painted or
    erased since, so edits reach the per-object exports too.
    """
    ids = [int(v) for v in np.unique(labels) if v]
    if stack is None:
        return {oid: labels == oid for oid in ids}
    kept = {obj.id: stack[i] for i, obj in enumerate(objects[: len(stack)])}
    agree = (labels == 0) & ~stack.any(axis=0)
    for oid, mask in kept.items():
        agree |= (labels == oid) & mask
    found = {oid: np.where(agree, mask, labels == oid) for oid, mask in kept.items()}
    return found | {oid: labels == oid for oid in ids if oid not in kept}


def _mask_array(result: Result) -> Any:
    if not result.metadata.get("keep_masks"):
        return None
    import zarr

    return zarr.open_array(str(result.path / "sam2v" / "masks"), mode="r")


def export_coco(
    result: Result | str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    frames: Sequence[int] | None = None,
    calibration: Calibration | None = None,
) -> Path:
    """Write a COCO-style JSON with one uncompressed-RLE annotation per frame and object.

    ``images`` has one entry per frame (``file_name`` ``frame_000000.png`` matches
    :func:`export_png`), ``categories`` one per object (``id`` = object id, the free-text
    name as ``name``; an id painted by hand that is no object gets ``object <id>``, as in
    the measurement tables), and ``annotations`` one per visible object on each finished
    frame, with ``segmentation`` ``{"size": [h, w], "counts": [...]}`` (column-major
    runs starting with background), ``area``, ``bbox`` ``[x, y, w, h]`` and, when known,
    the model's confidence: ``score``, the probability that the object is visible (in
    ``[0, 1]``, as COCO results and the tables' ``score`` column have it), and
    ``score_logit``, the object score logit it comes from. ``info.calibration`` is the store's
    calibration, or ``calibration`` when given. ``path`` is the ``.json`` file to
    write, or a folder to write ``coco.json`` into.

    Returns
    -------
    Path
    """
    res = _as_result(result)
    out = _outside_store(res, _file_in(path, "coco.json"))
    idx = _frames(res, frames)
    height, width = res.shape[1:]
    array = res.labels_array(writable=False)
    masks = _mask_array(res)
    done = res.frames_done
    scores = res.scores
    score_of: dict[tuple[int, int], float] = {}
    if scores is not None:
        for row in scores.itertuples(index=False):
            score_of[(int(row.frame), int(row.object_id))] = float(row.object_score_logit)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    categories = {o.id: o for o in res.objects}
    for t in idx:
        images.append(
            {
                "id": t + 1,
                "file_name": f"frame_{t:06d}.png",
                "width": width,
                "height": height,
                "frame_index": t,
                "complete": bool(done[t]),
            }
        )
        if not done[t]:
            continue
        labels = _read(res, array, t)
        stack = _read(res, masks, t, "its kept masks") if masks is not None else None
        for oid, mask in sorted(_frame_masks(labels, stack, res.objects).items()):
            if not mask.any():
                continue
            categories.setdefault(oid, ObjectInfo(oid))  # an id painted in napari by hand
            rows, cols = np.nonzero(mask)
            ann = {
                "id": len(annotations) + 1,
                "image_id": t + 1,
                "category_id": oid,
                "segmentation": rle_encode(mask),
                "area": int(mask.sum()),
                "bbox": [
                    int(cols.min()),
                    int(rows.min()),
                    int(cols.max() - cols.min() + 1),
                    int(rows.max() - rows.min() + 1),
                ],
                "iscrowd": 0,
            }
            logit = score_of.get((t, oid))
            if logit is not None and np.isfinite(logit):
                ann["score"] = score_probability(logit)
                ann["score_logit"] = logit
            annotations.append(ann)
    data = {
        "info": {
            "description": f"napari-sam2v result {res.path.name}",
            "date_created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "calibration": (calibration or res.calibration).to_dict(),
            "random_weights": res.random_weights,
        },
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": o.id, "name": o.name, "supercategory": "object"}
            for _, o in sorted(categories.items())
        ],
    }
    _make_dir(out.parent)
    try:
        atomic_write_json(out, data, fsync=False)
    except (OSError, ValueError) as exc:
        raise StoreError(f"{out}: cannot write the COCO file ({exc})") from exc
    return out
