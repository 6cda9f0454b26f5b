r"""The real ``cells`` sample: a crop of the Usiigaci T98G phase-contrast time-lapse.

The source (oist/Usiigaci, MIT licence) holds 37 frames of 1022 x 1024 uint16 phase
contrast with instance masks made by the source project's own segmentation and
tracking pipeline. The crop keeps all 37 frames, relabels the masks so that the
prompted cells are ids ``1..k`` (ids stay stable over time) and writes a prompts file
with one click per prompted cell on frame 0.

Regenerate the shipped files with::

    python -m napari_sam2v.samples.cells \
        --source /path/to/usiigaci_t98g_phase --out sample_data/cells
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_sam2v.errors import InputError, InputFileNotFoundError
from napari_sam2v.samples._common import interior_points, write_prompts_json
from napari_sam2v.types import Calibration, ObjectInfo

__all__ = [
    "CELLS_CALIBRATION",
    "CELLS_ORIGIN",
    "CELLS_SIZE",
    "crop_cells",
    "main",
    "relabel_cells",
    "write_cell_tiff",
]

CELLS_CALIBRATION = Calibration(pixel_size=0.87, unit="um", frame_interval=10.2, time_unit="min")
#: Top-left ``(row, column)`` of the crop in the source frames: 12 cells stay mostly
#: inside it over all 37 frames.
CELLS_ORIGIN: tuple[int, int] = (576, 32)
CELLS_SIZE = 320
IMAGE_NAME = "t98g_phase_crop.tif"
MASKS_NAME = "t98g_reference_masks.tif"
PROMPTS_NAME = "cells_prompts.json"
_SOURCE_IMAGE = Path("images") / "t98g_phase_T37.tif"
_SOURCE_MASKS = Path("masks") / "t98g_id_masks_T37.tif"


def relabel_cells(
    masks: np.ndarray, *, max_prompted: int = 8, min_area: int = 400
) -> tuple[np.ndarray, list[int]]:
    """Relabel cropped instance masks: prompted cells first, ids stable over time.

    Cells visible on frame 0, not touching the crop border and at least ``min_area``
    pixels large are candidates for a prompt; the ``max_prompted`` largest become ids
    ``1..k`` in raster order of their centroids. All other cells follow in order of
    first appearance (then source id).

    Parameters
    ----------
    masks : ndarray (t, y, x) integer
        Cropped instance masks; a value is one cell over all frames.
    max_prompted : int, optional
        At most this many cells get a prompt.
    min_area : int, optional
        Minimum frame-0 area, in pixels, of a prompted cell.

    Returns
    -------
    relabelled : ndarray (t, y, x) uint8
        Masks with ids ``1..n`` (0 = background).
    prompted : list of int
        The new ids ``1..k`` of the prompted cells.

    Raises
    ------
    InputError
        If the masks are not 3-D, hold more than 255 cells or too few candidates.
    """
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise InputError(f"cells: masks must be (t, y, x), got shape {masks.shape}")
    first = masks[0]
    border = np.unique(np.concatenate([first[0], first[-1], first[:, 0], first[:, -1]]))
    ids, areas = np.unique(first[first > 0], return_counts=True)
    candidates = [
        (int(a), int(i))
        for i, a in zip(ids, areas, strict=True)
        if a >= min_area and i not in border
    ]
    chosen = [i for _, i in sorted(candidates, reverse=True)[:max_prompted]]
    if len(chosen) < 5:
        raise InputError(f"cells: only {len(chosen)} whole cells on frame 0, need at least 5")
    centroids = ndimage.center_of_mass(np.ones_like(first), first, chosen)
    chosen = [i for _, i in sorted(zip(centroids, chosen, strict=True))]
    present = [int(i) for i in np.unique(masks) if i > 0]
    first_frame = {i: int(np.flatnonzero((masks == i).any(axis=(1, 2)))[0]) for i in present}
    rest = sorted((i for i in present if i not in chosen), key=lambda i: (first_frame[i], i))
    order = chosen + rest
    if len(order) > 255:
        raise InputError(f"cells: {len(order)} cells do not fit uint8 labels")
    lut = np.zeros(int(masks.max()) + 1, dtype=np.uint8)
    lut[order] = np.arange(1, len(order) + 1, dtype=np.uint8)
    return lut[masks], list(range(1, len(chosen) + 1))


def write_cell_tiff(path: Path, data: np.ndarray, calibration: Calibration) -> Path:
    """Write a (t, y, x) stack as a zlib-compressed ImageJ hyperstack with calibration.

    Parameters
    ----------
    path : Path
        Destination ``.tif``.
    data : ndarray (t, y, x)
        uint8 or uint16 stack.
    calibration : Calibration
        Pixel size (``um``) and frame interval (``min``) written as ImageJ metadata.

    Returns
    -------
    Path
        ``path``.
    """
    import tifffile

    pixels_per_unit = 1.0 / calibration.spatial_scale
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        compression="zlib",
        predictor=data.dtype != np.uint8,
        resolution=(pixels_per_unit, pixels_per_unit),
        metadata={
            "axes": "TYX",
            "unit": calibration.unit,
            "finterval": calibration.time_scale,
            "tunit": calibration.time_unit,
        },
    )
    return Path(path)


def _read_source(source: Path) -> tuple[np.ndarray, np.ndarray]:
    import tifffile

    arrays = []
    for rel in (_SOURCE_IMAGE, _SOURCE_MASKS):
        path = source / rel
        if not path.is_file():
            raise InputFileNotFoundError(f"{path}: missing, is {source} the Usiigaci T98G folder?")
        try:
            arrays.append(tifffile.imread(path))
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot be read as TIFF ({exc})") from exc
    image, masks = arrays
    if image.ndim != 3 or image.shape != masks.shape:
        raise InputError(
            f"{source}: expected matching (t, y, x) image and masks, got {image.shape} "
            f"and {masks.shape}"
        )
    return image, masks


def crop_cells(
    source: Path,
    out: Path,
    *,
    origin: tuple[int, int] = CELLS_ORIGIN,
    size: int = CELLS_SIZE,
) -> dict[str, Path]:
    """Crop the T98G time-lapse and write the ``cells`` sample files.

    Writes ``t98g_phase_crop.tif`` (uint16), ``t98g_reference_masks.tif`` (uint8,
    relabelled, see :func:`relabel_cells`), ``cells_prompts.json`` (one click per
    prompted cell on frame 0, at the cell pixel furthest from its boundary) and a
    copy of the source ``LICENSE``.

    Parameters
    ----------
    source : Path
        Folder with ``images/t98g_phase_T37.tif``, ``masks/t98g_id_masks_T37.tif``
        and ``LICENSE``.
    out : Path
        Output folder; created when missing.
    origin : tuple of int, optional
        Top-left ``(row, column)`` of the crop.
    size : int, optional
        Edge length of the square crop, pixels.

    Returns
    -------
    dict
        ``{"video": ..., "labels": ..., "prompts": ..., "license": ...}`` paths.
    """
    source, out = Path(source), Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: output path exists and is not a folder")
    if not source.is_dir():
        raise InputFileNotFoundError(f"{source}: source folder does not exist")
    licence = source / "LICENSE"
    if not licence.is_file():
        raise InputFileNotFoundError(f"{licence}: missing; the data may not be copied without it")
    image, masks = _read_source(source)
    r0, c0 = origin
    if r0 < 0 or c0 < 0 or r0 + size > image.shape[1] or c0 + size > image.shape[2]:
        raise InputError(f"cells: crop {origin} + {size} px is outside frames {image.shape[1:]}")
    image = np.ascontiguousarray(image[:, r0 : r0 + size, c0 : c0 + size])
    labels, prompted = relabel_cells(masks[:, r0 : r0 + size, c0 : c0 + size])
    objects = [ObjectInfo(i, f"cell {i}") for i in prompted]
    prompts = [
        {"frame": 0, "object": i, "points": interior_points(labels[0] == i, 1), "labels": [1]}
        for i in prompted
    ]
    out.mkdir(parents=True, exist_ok=True)
    return {
        "video": write_cell_tiff(out / IMAGE_NAME, image, CELLS_CALIBRATION),
        "labels": write_cell_tiff(out / MASKS_NAME, labels, CELLS_CALIBRATION),
        "prompts": write_prompts_json(out / PROMPTS_NAME, objects, prompts),
        "license": Path(shutil.copyfile(licence, out / "LICENSE")),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m napari_sam2v.samples.cells --source DIR --out DIR``."""
    parser = argparse.ArgumentParser(
        prog="python -m napari_sam2v.samples.cells",
        description="Crop the Usiigaci T98G phase-contrast time-lapse into the cells sample.",
    )
    parser.add_argument("--source", type=Path, required=True, help="usiigaci_t98g_phase folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args(argv)
    try:
        paths = crop_cells(args.source, args.out)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for kind, path in paths.items():
        print(f"{kind}: {path} ({path.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
