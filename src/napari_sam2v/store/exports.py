"""Exports of a result: ImageJ label TIFF, PNG sequences and COCO JSON (RLE).

Object names are free text: they never form paths on their own. File names use the
object id plus a sanitised name (letters, digits, ``-``, ``_``, ``.``), and every
output path is checked to stay inside the output folder.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_sam2v.engines.base import score_probability
from napari_sam2v.errors import ExportError, StoreError
from napari_sam2v.io.rle import rle_encode
from napari_sam2v.store.layout import atomic_write_json
from napari_sam2v.store.result import Result, open_result
from napari_sam2v.types import Calibration, ObjectInfo

__all__ = ["export_coco", "export_png", "export_tiff", "safe_name"]

_TIFF_UNITS = {"um": "micron", "nm": "nm", "mm": "mm", "cm": "cm", "m": "m"}


def _as_result(result: Result | str | os.PathLike[str]) -> Result:
    return result if isinstance(result, Result) else open_result(result)


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


#: Largest label id a float32 TIFF holds exactly.
_FLOAT32_EXACT = 2**24


def _frame_interval(interval: float, idx: list[int]) -> float | None:
    """The time between the exported pages: a multiple for evenly spaced frames."""
    steps = set(np.diff(idx).tolist())
    if len(steps) > 1 or (steps and min(steps) <= 0):
        return None  # uneven or unordered frames have no single interval
    return interval * (steps.pop() if steps else 1)


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
    out = _file_in(path, "labels.tif")
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
    metadata: dict[str, Any] = {"axes": "TYX", "Labels": [f"frame {i}" for i in idx]}
    interval = None if cal.frame_interval is None else _frame_interval(cal.frame_interval, idx)
    if interval is not None:
        metadata.update(finterval=interval, tunit=cal.time_unit)
    kwargs: dict[str, Any] = {}
    if cal.pixel_size is not None:
        metadata["unit"] = _TIFF_UNITS.get(cal.unit, cal.unit)
        kwargs["resolution"] = (1.0 / cal.pixel_size, 1.0 / cal.pixel_size)

    def pages() -> Iterator[np.ndarray]:
        for t in idx:
            page = np.asarray(array[t])
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
    except OSError as exc:
        raise StoreError(f"{out}: cannot write the TIFF ({exc})") from exc
    finally:
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
        The written files. Files ``frame_NNNNNN.png`` of an earlier export that this
        one did not write are removed from the folders written to, so a folder
        always holds one export.
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
    root = _make_dir(Path(out_dir))
    idx = _frames(res, frames)
    masks = _mask_array(res)
    written: list[Path] = []
    folders = {}
    if mode == "objects":
        for obj in res.objects:
            folder = _inside(root, root / f"{obj.id:03d}_{safe_name(obj.name)}")
            folder.mkdir(exist_ok=True)
            folders[obj.id] = folder
    for t in idx:
        labels = np.asarray(array[t])
        if mode == "instance":
            path = _inside(root, root / f"frame_{t:06d}.png")
            _write_png(path, labels.astype(np.uint16, copy=False))
            written.append(path)
            continue
        stack = np.asarray(masks[t]) if masks is not None else None
        frame_masks = _frame_masks(labels, stack, res.objects)
        for obj in res.objects:
            mask = frame_masks.get(obj.id, np.zeros(labels.shape, dtype=bool))
            path = _inside(root, folders[obj.id] / f"frame_{t:06d}.png")
            _write_png(path, mask.astype(np.uint8) * 255)
            written.append(path)
    _remove_stale_frames({root} if mode == "instance" else set(folders.values()), set(written))
    return written


_FRAME_PNG = re.compile(r"frame_\d{6}\.png")


def _remove_stale_frames(folders: set[Path], written: set[Path]) -> None:
    """Remove frame PNGs an earlier, longer export left beside this one's."""
    for folder in folders:
        for path in folder.iterdir():
            if _FRAME_PNG.fullmatch(path.name) and path not in written and path.is_file():
                path.unlink()


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
    out = _file_in(path, "coco.json")
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
        labels = np.asarray(array[t])
        stack = np.asarray(masks[t]) if masks is not None else None
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
