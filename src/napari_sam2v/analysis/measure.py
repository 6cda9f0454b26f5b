"""``measure()``: per-frame, per-track and MSD tables from a label video.

Labels are read one frame at a time (numpy, dask or zarr), and all objects of a frame
are measured in one vectorised pass (:mod:`napari_sam2v.analysis.features`), so memory
holds one frame plus the growing result table, never the whole label volume.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from napari_sam2v._frame_ranges import frame_ranges
from napari_sam2v.analysis._inputs import (
    Source,
    iter_frames,
    resolve_source,
    select_objects,
)
from napari_sam2v.analysis.features import frame_features, new_workspace
from napari_sam2v.analysis.measurements import Measurements
from napari_sam2v.analysis.trajectory import FrameClock, ensemble_msd, msd_table, track_table
from napari_sam2v.engines.base import score_probability
from napari_sam2v.errors import InputError, MeasurementCancelledError
from napari_sam2v.io.frame_times import own_frame_times, variable_rate_note
from napari_sam2v.types import Calibration, ObjectInfo

__all__ = ["measure"]


def _check_image(image: Any, labels_shape: tuple[int, ...]) -> int:
    """Validate an intensity source against the labels; return its channel count."""
    shape = tuple(getattr(image, "shape", ()))
    if len(shape) not in (3, 4) or not hasattr(image, "__getitem__"):
        raise InputError(
            f"image: expected a (t, y, x) or (t, y, x, c) array, got shape {shape or None}"
        )
    if shape[:3] != tuple(labels_shape):
        raise InputError(
            f"image: shape {shape} does not match the labels (t, y, x) = {tuple(labels_shape)}"
        )
    return 1 if len(shape) == 3 else int(shape[3])


def _score_columns(frames: pd.DataFrame, scores: pd.DataFrame | None) -> pd.DataFrame:
    """Join the model's per-(object, frame) confidence when the store has it."""
    if scores is None:
        return frames
    needed = {"object_id", "frame", "object_score_logit"}
    missing = needed - set(scores.columns)
    if missing:
        raise InputError(f"scores table lacks column(s) {sorted(missing)}")
    sc = scores.drop_duplicates(["object_id", "frame"], keep="last").copy()
    sc["object_id"] = sc["object_id"].astype(np.int64)
    sc["frame"] = sc["frame"].astype(np.int64)
    sc["score"] = score_probability(sc["object_score_logit"].to_numpy(dtype=np.float64))
    keep = ["object_id", "frame", "score"] + (["iou"] if "iou" in sc.columns else [])
    return frames.merge(sc[keep], on=["object_id", "frame"], how="left")


def measure(
    result_or_labels: Any,
    image: Any = None,
    *,
    pixel_size: float | None = None,
    frame_interval: float | None = None,
    unit: str | None = None,
    time_unit: str | None = None,
    objects: Iterable[int | ObjectInfo] | None = None,
    growth_threshold: float = 0.05,
    shape_features: bool = True,
    max_lag: int | None = 100,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Measurements:
    """Measure every object of a label video: per frame, per track and MSD.

    Parameters
    ----------
    result_or_labels : Result or array-like
        A store ``Result`` (its ``labels``, ``calibration``, ``objects``, ``scores``
        and ``path`` are used) or any ``(t, y, x)`` integer label array (numpy, dask,
        zarr); 0 is background, other values are object ids.
    image : array-like, optional
        ``(t, y, x)`` or ``(t, y, x, c)`` intensities aligned with the labels; adds
        ``mean_intensity`` and ``integrated_intensity`` (suffixed ``_c<i>`` per channel).
    pixel_size, unit : float, str, optional
        Pixel edge length and its unit; override the store's calibration.
    frame_interval, time_unit : float, str, optional
        Time between frames and its unit; override the store's calibration.
    objects : iterable of int or ObjectInfo, optional
        Only measure these objects (default: every object of the store plus every
        label value found). Names and colours of given ``ObjectInfo`` take precedence
        over the store's; a requested object that never appears is reported as never
        present.
    growth_threshold : float, optional
        Relative area change beyond which a track is ``grow`` / ``shrink`` (TagLab's
        5 % by default).
    shape_features : bool, optional
        Compute ``perimeter``, ``solidity`` and ``circularity`` (NaN when False).
    max_lag : int or None, optional
        Largest MSD lag in frames (trackpy's default 100; ``None`` for all).
    progress : callable, optional
        Called as ``progress(frames_done, n_frames)`` after each frame.
    cancel : callable, optional
        Polled before each frame; when it returns True the measurement stops with
        :class:`~napari_sam2v.errors.MeasurementCancelledError`.

    Returns
    -------
    Measurements

    Raises
    ------
    InputError
        For labels that are not a 3-D integer array, negative labels, an image of
        another shape, inconsistent calibration or invalid options; option errors are
        raised before any frame is read.
    MeasurementCancelledError
        When ``cancel()`` returned True.
    """
    if not (isinstance(growth_threshold, (int, float)) and 0 <= growth_threshold < math.inf):
        raise InputError(
            f"growth_threshold must be a non-negative number, got {growth_threshold!r}"
        )
    if max_lag is not None and (
        isinstance(max_lag, bool) or not isinstance(max_lag, (int, np.integer)) or max_lag < 1
    ):
        raise InputError(f"max_lag must be at least 1 (or None for all lags), got {max_lag!r}")
    requested = None if objects is None else list(objects)
    given = {o.id: o for o in requested or () if isinstance(o, ObjectInfo)}
    source = resolve_source(result_or_labels)
    calibration = source.calibration.overridden(
        pixel_size=pixel_size,
        unit=unit,
        frame_interval=frame_interval,
        time_unit=time_unit,
    )
    clock = _frame_clock(source, calibration)
    if source.variable_rate is not None:
        note = variable_rate_note(
            source.description, source.variable_rate, own_times=clock.times is not None
        )
        warnings.warn(note, UserWarning, stacklevel=2)
    wanted = select_objects(requested)
    labels = source.labels
    n_frames = int(labels.shape[0])
    n_channels = 0 if image is None else _check_image(image, tuple(labels.shape))
    chunks, first_image = _scan(
        source.labels,
        image,
        what=source.description,
        wanted=wanted,
        shape_features=shape_features,
        progress=progress,
        cancel=cancel,
    )
    frame_shape = (int(labels.shape[1]), int(labels.shape[2]))
    frames = _assemble(chunks, calibration.spatial_scale, clock, n_channels, frame_shape)
    # Every object found or known to the store; an explicit selection is reported in
    # full, so a requested object that never appears gets a row saying so.
    found = {int(v) for v in frames["object_id"].unique()}
    object_ids = sorted(found | set(source.objects) if wanted is None else wanted)
    infos = {
        oid: given.get(oid) or source.objects.get(oid) or ObjectInfo(oid) for oid in object_ids
    }
    names = {oid: info.name for oid, info in infos.items()}
    frames.insert(1, "name", frames["object_id"].map(names).astype(object))
    frames = _score_columns(frames, source.scores)
    presence = _presence(frames, object_ids, n_frames, clock, source.tracked)
    tracks = track_table(
        frames,
        object_ids,
        names,
        time_scale=clock,
        growth_threshold=float(growth_threshold),
    )
    full_msd = msd_table(frames, time_scale=clock, max_lag=max_lag)
    emsd = ensemble_msd(full_msd)
    msd = full_msd.loc[full_msd["n_pairs"] > 0].drop(columns="n_effective").reset_index(drop=True)
    return Measurements(
        frames=frames,
        tracks=tracks,
        msd=msd,
        emsd=emsd,
        presence=presence,
        calibration=calibration,
        objects=list(infos.values()),
        source=source.description,
        n_frames=n_frames,
        frame_shape=frame_shape,
        growth_threshold=float(growth_threshold),
        n_channels=n_channels,
        first_image=first_image,
        untracked_frames=[] if source.tracked is None else frame_ranges(~source.tracked),
        frame_times=None if clock.times is None else [float(t) for t in clock.times],
    )


def _scan(
    labels: Any,
    image: Any,
    *,
    what: str,
    wanted: set[int] | None,
    shape_features: bool,
    progress: Callable[[int, int], None] | None,
    cancel: Callable[[], bool] | None,
) -> tuple[list[dict[str, np.ndarray]], np.ndarray | None]:
    """Measure every frame (read one ahead); return per-frame chunks and frame 0's image."""
    n_frames = int(labels.shape[0])
    signed = np.issubdtype(np.dtype(labels.dtype), np.signedinteger)
    chunks: list[dict[str, np.ndarray]] = []
    first_image = None
    workspace: np.ndarray | None = None
    frames_iter = iter_frames(labels, image, n_frames, what=what)
    try:
        for t, lab, img in frames_iter:
            if cancel is not None and cancel():
                raise MeasurementCancelledError(
                    f"{what}: measurement cancelled at frame {t} of {n_frames}"
                )
            if lab.dtype == np.bool_:
                lab = lab.astype(np.uint8)
            if signed and lab.size and lab.min() < 0:
                raise InputError(f"{what}: frame {t} has negative label values")
            if t == 0 and img is not None:
                first_image = img
            if workspace is None or workspace.dtype != lab.dtype:
                workspace = new_workspace(lab.shape, lab.dtype)
            feats = frame_features(lab, shape=shape_features, image=img, workspace=workspace)
            keep = slice(None) if wanted is None else np.isin(feats.ids, list(wanted))
            chunk = {
                "object_id": feats.ids[keep],
                "frame": np.full(feats.ids[keep].size, t, dtype=np.int64),
                "area_px": feats.area[keep],
                "centroid_y_px": feats.centroid_y[keep],
                "centroid_x_px": feats.centroid_x[keep],
                "bbox": feats.bbox[keep],
                "eccentricity": feats.eccentricity[keep],
                "orientation": feats.orientation[keep],
            }
            if feats.perimeter is not None and feats.area_convex is not None:
                chunk["perimeter_px"] = feats.perimeter[keep]
                chunk["area_convex_px"] = feats.area_convex[keep]
            if feats.intensity_sum is not None:
                chunk["intensity_sum"] = feats.intensity_sum[keep]
            chunks.append(chunk)
            if progress is not None:
                progress(t + 1, n_frames)
    finally:
        frames_iter.close()
    return chunks, first_image


def _frame_clock(source: Source, calibration: Calibration) -> FrameClock:
    """Evenly spaced frames, or a variable-rate video's own frame times.

    The store's recorded frame times are used while the calibration's interval is the
    video's median interval; an interval given to ``measure``, or set with
    ``napari-sam2v calibrate`` since, that differs from it makes one interval serve
    every frame (:func:`~napari_sam2v.io.frame_times.own_frame_times`).
    """
    times = own_frame_times(source.frame_times, source.variable_rate, calibration)
    return FrameClock(calibration.time_scale, times)


def _assemble(
    chunks: list[dict[str, np.ndarray]],
    scale: float,
    clock: FrameClock,
    n_channels: int,
    frame_shape: tuple[int, int],
) -> pd.DataFrame:
    """Concatenate per-frame chunks into the ``.frames`` table with calibrated columns."""

    def cat(key: str, width: int | None = None) -> np.ndarray:
        parts = [c[key] for c in chunks if key in c]
        if parts:
            return np.concatenate(parts)
        return np.zeros((0, width) if width else 0)

    oid = cat("object_id").astype(np.int64)
    frame = cat("frame").astype(np.int64)
    area_px = cat("area_px")
    bbox = cat("bbox", 4).reshape(-1, 4).astype(np.int64)
    has_shape = all("perimeter_px" in c for c in chunks) and bool(chunks)
    perim_px = cat("perimeter_px") if has_shape else np.full(oid.size, np.nan)
    convex_px = cat("area_convex_px") if has_shape else np.full(oid.size, np.nan)
    cy, cx = cat("centroid_y_px"), cat("centroid_x_px")
    with np.errstate(divide="ignore", invalid="ignore"):
        circ = np.where(perim_px > 0, 4 * math.pi * area_px / perim_px**2, np.nan)
        solidity = area_px / convex_px
    data: dict[str, np.ndarray] = {
        "object_id": oid,
        "frame": frame,
        "time": clock.at(frame),
        "area_px": area_px.astype(np.int64),
        "area": area_px * scale**2,
        "perimeter": perim_px * scale,
        "centroid_y_px": cy,
        "centroid_x_px": cx,
        "centroid_y": cy * scale,
        "centroid_x": cx * scale,
        "bbox_y0": bbox[:, 0],
        "bbox_x0": bbox[:, 1],
        "bbox_y1": bbox[:, 2],
        "bbox_x1": bbox[:, 3],
        # cut by the image edge: area, perimeter and centroid are of the visible part
        "touches_edge": (bbox[:, 0] <= 0)
        | (bbox[:, 1] <= 0)
        | (bbox[:, 2] >= frame_shape[0])
        | (bbox[:, 3] >= frame_shape[1]),
        "equivalent_diameter": np.sqrt(4 * area_px / math.pi) * scale,
        "eccentricity": cat("eccentricity"),
        "orientation": cat("orientation"),
        "solidity": solidity,
        "circularity": circ,
    }
    if n_channels:
        sums = cat("intensity_sum", n_channels).reshape(-1, n_channels)
        for ch in range(n_channels):
            suffix = "" if n_channels == 1 else f"_c{ch}"
            data[f"mean_intensity{suffix}"] = sums[:, ch] / np.where(area_px > 0, area_px, 1)
            data[f"integrated_intensity{suffix}"] = sums[:, ch]
    frames = pd.DataFrame(data)
    return frames.sort_values(["object_id", "frame"], kind="stable").reset_index(drop=True)


def _presence(
    frames: pd.DataFrame,
    object_ids: list[int],
    n_frames: int,
    clock: FrameClock,
    tracked: np.ndarray | None,
) -> pd.DataFrame:
    """Long table ``object_id, frame, time, present, tracked`` for every object and frame."""
    oid = np.repeat(np.asarray(object_ids, dtype=np.int64), n_frames)
    frame = np.tile(np.arange(n_frames, dtype=np.int64), len(object_ids))
    present = np.zeros(oid.size, dtype=bool)
    if len(frames) and object_ids:
        index = {o: i for i, o in enumerate(object_ids)}
        rows = frames["object_id"].map(index).to_numpy(dtype=np.int64)
        present[rows * n_frames + frames["frame"].to_numpy(dtype=np.int64)] = True
    done = np.ones(n_frames, dtype=bool) if tracked is None else tracked
    return pd.DataFrame(
        {
            "object_id": oid,
            "frame": frame,
            "time": clock.at(frame),
            "present": present,
            "tracked": np.tile(done, len(object_ids)),
        }
    )
