"""Loading the bundled samples: the :class:`Sample` type and napari layer data."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from napari_sam2v.errors import InputError, InputFileNotFoundError, VideoReadError
from napari_sam2v.samples import cells as _cells
from napari_sam2v.samples import reef as _reef
from napari_sam2v.types import Calibration, ObjectInfo

__all__ = [
    "Sample",
    "cells_layer_data",
    "load_cells",
    "load_reef",
    "reef_layer_data",
    "sample_data_dir",
]

REEF_ATTRIBUTION = (
    "Synthetic clip rendered by napari_sam2v.samples.reef (part of napari-sam2v, "
    "BSD-3-Clause); the ground truth is exact by construction."
)
CELLS_ATTRIBUTION = (
    "T98G glioblastoma cells, Nikon 10x phase contrast, cropped from oist/Usiigaci "
    "(commit 9501d80c, ExampleData/), MIT licence, Copyright (c) 2018 Okinawa Institute "
    "of Science & Technology Graduate University. The reference masks are the output of "
    "the source project's segmentation and tracking pipeline, not human ground truth."
)
LayerData = tuple[np.ndarray, dict[str, Any], str]


@dataclass(frozen=True, eq=False)
class Sample:
    """A bundled sample video with its reference labels and prompts.

    Attributes
    ----------
    name : str
        ``"reef"`` or ``"cells"``.
    frames : ndarray
        ``(t, y, x, 3)`` uint8 (reef, decoded from the shipped mp4) or ``(t, y, x)``
        uint16 (cells). Read-only.
    labels : ndarray (t, y, x)
        Instance labels (value = object id): exact ground truth for reef, a
        pipeline's output for cells (see :attr:`reference_is_truth`). Read-only.
    video_path : Path
        The shipped video file (what a user would open).
    prompts_path : Path
        The prompts JSON (version 1) with clicks for :attr:`objects`.
    calibration : Calibration
        Physical calibration.
    objects : list of ObjectInfo
        The prompted objects; their ids are the matching label values.
    attribution : str
        Origin and licence of the data.
    reference_is_truth : bool
        Whether :attr:`labels` is exact ground truth (reef) or only a reference (cells).
    """

    name: str
    frames: np.ndarray
    labels: np.ndarray
    video_path: Path
    prompts_path: Path
    calibration: Calibration
    objects: list[ObjectInfo] = field(default_factory=list)
    attribution: str = ""
    reference_is_truth: bool = False


def sample_data_dir() -> Path:
    """Folder holding the bundled sample files.

    Wheels ship it as ``napari_sam2v/sample_data``; editable installs and source
    checkouts use the repository's top-level ``sample_data/``.

    Returns
    -------
    Path

    Raises
    ------
    InputFileNotFoundError
        If neither location exists.
    """
    package = Path(__file__).resolve().parents[1]
    candidates = (package / "sample_data", package.parents[1] / "sample_data")
    for folder in candidates:
        if folder.is_dir():
            return folder
    tried = ", ".join(str(c) for c in candidates)
    raise InputFileNotFoundError(f"sample data folder not found (looked in {tried})")


def _sample_file(*parts: str) -> Path:
    path = sample_data_dir().joinpath(*parts)
    if not path.is_file():
        raise InputFileNotFoundError(f"{path}: sample file is missing from the installation")
    return path


def _read_objects(path: Path) -> list[ObjectInfo]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [ObjectInfo(int(o["id"]), str(o["name"]), str(o["color"])) for o in data["objects"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a valid prompts file ({exc})") from exc


def decode_rgb_video(path: Path) -> tuple[np.ndarray, float]:
    """Decode every frame of a video file to RGB with PyAV.

    Parameters
    ----------
    path : Path
        Video file.

    Returns
    -------
    frames : ndarray (t, y, x, 3) uint8
    fps : float
        The stream's average frame rate.

    Raises
    ------
    VideoReadError
        If the file cannot be decoded or holds no frames.
    """
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    except (av.FFmpegError, IndexError, OSError) as exc:
        raise VideoReadError(f"{path}: cannot decode the video ({exc})") from exc
    if not frames or rate is None:
        raise VideoReadError(f"{path}: the video holds no decodable frames")
    return np.stack(frames), float(rate)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@lru_cache(maxsize=1)
def load_reef() -> Sample:
    """Load the synthetic reef clip (decoded from the shipped mp4) and its exact ground truth.

    The clip is spatially uncalibrated (lengths in pixels); the frame interval is
    that of the mp4 (1/12 s).

    Returns
    -------
    Sample

    Raises
    ------
    InputFileNotFoundError
        If a sample file is missing.
    VideoReadError, InputError
        If a sample file is corrupt or the video and labels disagree in shape.
    """
    video = _sample_file("reef", _reef.MP4_NAME)
    labels_path = _sample_file("reef", _reef.LABELS_NAME)
    prompts = _sample_file("reef", _reef.PROMPTS_NAME)
    frames, fps = decode_rgb_video(video)
    try:
        with np.load(labels_path) as archive:
            labels = archive["labels"]
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{labels_path}: cannot read the 'labels' array ({exc})") from exc
    if labels.shape != frames.shape[:3]:
        raise InputError(
            f"{labels_path}: labels shape {labels.shape} does not match the video "
            f"{frames.shape[:3]}"
        )
    return Sample(
        name="reef",
        frames=_read_only(frames),
        labels=_read_only(labels),
        video_path=video,
        prompts_path=prompts,
        calibration=Calibration(frame_interval=1.0 / fps, time_unit="s"),
        objects=_read_objects(prompts),
        attribution=REEF_ATTRIBUTION,
        reference_is_truth=True,
    )


def _read_tiff_stack(path: Path) -> np.ndarray:
    import tifffile

    try:
        data = tifffile.imread(path)
    except (OSError, ValueError) as exc:
        raise VideoReadError(f"{path}: cannot be read as TIFF ({exc})") from exc
    if data.ndim != 3:
        raise InputError(f"{path}: expected a (t, y, x) stack, got shape {data.shape}")
    return data


@lru_cache(maxsize=1)
def load_cells() -> Sample:
    """Load the T98G phase-contrast crop and its reference masks (pipeline output).

    Returns
    -------
    Sample
        Calibrated at 0.87 um per pixel and 10.2 min per frame;
        ``reference_is_truth`` is ``False``.

    Raises
    ------
    InputFileNotFoundError
        If a sample file is missing.
    VideoReadError, InputError
        If a sample file is corrupt or image and masks disagree in shape.
    """
    video = _sample_file("cells", _cells.IMAGE_NAME)
    masks_path = _sample_file("cells", _cells.MASKS_NAME)
    prompts = _sample_file("cells", _cells.PROMPTS_NAME)
    frames = _read_tiff_stack(video)
    labels = _read_tiff_stack(masks_path)
    if labels.shape != frames.shape:
        raise InputError(
            f"{masks_path}: masks shape {labels.shape} does not match the image {frames.shape}"
        )
    return Sample(
        name="cells",
        frames=_read_only(frames),
        labels=_read_only(labels),
        video_path=video,
        prompts_path=prompts,
        calibration=_cells.CELLS_CALIBRATION,
        objects=_read_objects(prompts),
        attribution=CELLS_ATTRIBUTION,
        reference_is_truth=False,
    )


def _layer_data(sample: Sample, image_name: str, labels_name: str) -> list[LayerData]:
    from napari_sam2v._napari_io import layer_axes

    cal = sample.calibration
    scale, units = layer_axes(cal)  # time in frames, image axes in the pixel size's unit
    metadata = {
        "sample": sample.name,
        "video_path": str(sample.video_path),
        "prompts_path": str(sample.prompts_path),
        "calibration": cal.to_dict(),
        "objects": [{"id": o.id, "name": o.name, "color": o.color} for o in sample.objects],
        "attribution": sample.attribution,
        "reference_is_truth": sample.reference_is_truth,
    }
    common: dict[str, Any] = {"scale": scale, "units": units, "axis_labels": ("t", "y", "x")}
    image_kwargs = {"name": image_name, "metadata": dict(metadata), **common}
    if sample.frames.ndim == 4:
        image_kwargs["rgb"] = True
    labels_kwargs = {"name": labels_name, "metadata": dict(metadata), **common}
    # Copies: napari may paint into layers, the cached sample must stay intact.
    return [
        (np.array(sample.frames), image_kwargs, "image"),
        (np.array(sample.labels), labels_kwargs, "labels"),
    ]


def reef_layer_data() -> list[LayerData]:
    """napari sample contribution: the reef clip and its ground-truth labels.

    Returns
    -------
    list of (data, kwargs, layer_type)
        An RGB image layer ``"reef"`` and a labels layer ``"reef ground truth"``.
    """
    return _layer_data(load_reef(), "reef", "reef ground truth")


def cells_layer_data() -> list[LayerData]:
    """napari sample contribution: the T98G crop and its reference masks.

    Returns
    -------
    list of (data, kwargs, layer_type)
        An image layer ``"T98G phase"`` and a labels layer named as pipeline output.
    """
    return _layer_data(
        load_cells(),
        "T98G phase",
        "T98G reference masks (pipeline output, not ground truth)",
    )
