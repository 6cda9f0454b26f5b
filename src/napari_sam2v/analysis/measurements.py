"""The :class:`Measurements` result: tables, units, exports, plots and napari tracks."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from napari_sam2v._version import __version__
from napari_sam2v.analysis import plots
from napari_sam2v.analysis.export import write_sidecar, write_tables
from napari_sam2v.analysis.trajectory import fit_power_law, step_table
from napari_sam2v.errors import ExportError
from napari_sam2v.types import Calibration, ObjectInfo

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["SIDECAR_NAME", "Measurements", "column_units"]

SIDECAR_NAME = "measurements.json"
_PLOT_FORMATS = ("png", "svg", "pdf")


def column_units(calibration: Calibration, n_channels: int = 0) -> dict[str, dict[str, str]]:
    """Unit of every column of every table for a calibration.

    Dimensionless columns are ``"1"``, angles ``"rad"``, counts ``"count"`` and
    pixel-grid columns ``"px"`` whatever the calibration.
    """
    length = calibration.unit
    time = calibration.time_unit
    speed = f"{length}/{time}"
    frames = {
        "object_id": "id",
        "name": "text",
        "frame": "frame",
        "time": time,
        "area_px": "px^2",
        "area": f"{length}^2",
        "perimeter": length,
        "centroid_y_px": "px",
        "centroid_x_px": "px",
        "centroid_y": length,
        "centroid_x": length,
        "bbox_y0": "px",
        "bbox_x0": "px",
        "bbox_y1": "px",
        "bbox_x1": "px",
        "touches_edge": "bool",
        "equivalent_diameter": length,
        "eccentricity": "1",
        "orientation": "rad",
        "solidity": "1",
        "circularity": "1",
        "score": "1",
        "iou": "1",
    }
    for ch in range(n_channels):
        suffix = "" if n_channels == 1 else f"_c{ch}"
        frames[f"mean_intensity{suffix}"] = "intensity"
        frames[f"integrated_intensity{suffix}"] = "intensity*pixel"
    tracks = {
        "object_id": "id",
        "name": "text",
        "first_frame": "frame",
        "last_frame": "frame",
        "n_frames": "count",
        "n_missing": "count",
        "duration": time,
        "path_length": length,
        "net_displacement": length,
        "max_distance_from_start": length,
        "mean_speed": speed,
        "median_speed": speed,
        "max_speed": speed,
        "std_speed": speed,
        "confinement_ratio": "1",
        "mean_straight_line_speed": speed,
        "linearity_of_forward_progression": "1",
        "mean_directional_change_rate": f"rad/{time}",
        "area_mean": f"{length}^2",
        "area_first": f"{length}^2",
        "area_last": f"{length}^2",
        "area_change_pct": "%",
        "growth": "text",
    }
    msd = {
        "object_id": "id",
        "lag_frames": "frame",
        "lag_time": time,
        "msd": f"{length}^2",
        "n_pairs": "count",
    }
    emsd = {
        "lag_frames": "frame",
        "lag_time": time,
        "msd": f"{length}^2",
        "n_pairs": "count",
        "n_objects": "count",
        "msd_effective_n": f"{length}^2",
    }
    presence = {
        "object_id": "id",
        "frame": "frame",
        "time": time,
        "present": "bool",
        "tracked": "bool",
    }
    return {"frames": frames, "tracks": tracks, "msd": msd, "emsd": emsd, "presence": presence}


@dataclass
class Measurements:
    """Per-frame, per-track and MSD tables of one label video, in physical units.

    Attributes
    ----------
    frames : DataFrame
        One row per (object, frame) where the object is present.
    tracks : DataFrame
        One row per object (objects never present get NaN statistics).
    msd : DataFrame
        Per-object MSD: ``object_id, lag_frames, lag_time, msd, n_pairs``.
    emsd : DataFrame
        Ensemble MSD per lag (pair-weighted ``msd`` and trackpy's ``msd_effective_n``).
    presence : DataFrame
        ``object_id, frame, time, present, tracked`` for every object and every
        frame: absent frames are explicit here and never appear as zeros in
        ``frames``. ``tracked`` is False on frames a partial store never tracked
        (an interrupted or cancelled run), where ``present`` is False too.
    calibration : Calibration
        Calibration used for every physical column.
    objects : list of ObjectInfo
        Objects reported (names, colours).
    source : str
        What was measured (store path or array description).
    untracked_frames : list of [int, int]
        Inclusive frame ranges a partial store never tracked (empty when complete).
    frame_times : list of float or None
        When each frame was taken, in the calibration's time unit, for a
        variable-frame-rate video measured with its own frame times; ``None`` when
        the frames are ``calibration.frame_interval`` apart.
    """

    frames: pd.DataFrame
    tracks: pd.DataFrame
    msd: pd.DataFrame
    emsd: pd.DataFrame
    presence: pd.DataFrame
    calibration: Calibration
    objects: list[ObjectInfo]
    source: str
    n_frames: int
    frame_shape: tuple[int, int]
    growth_threshold: float = 0.05
    n_channels: int = 0
    first_image: np.ndarray | None = field(default=None, repr=False)
    untracked_frames: list[list[int]] = field(default_factory=list)
    frame_times: list[float] | None = None

    @property
    def units(self) -> dict[str, dict[str, str]]:
        """``{table: {column: unit}}`` for every column present."""
        allunits = column_units(self.calibration, self.n_channels)
        return {
            name: {c: allunits[name][c] for c in table.columns if c in allunits[name]}
            for name, table in self.tables().items()
        }

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables by name, in export order."""
        return {
            "frames": self.frames,
            "tracks": self.tracks,
            "msd": self.msd,
            "emsd": self.emsd,
            "presence": self.presence,
        }

    def steps(self) -> pd.DataFrame:
        """Displacement, time step and speed between consecutive present frames."""
        return step_table(self.frames, self.calibration.time_scale)

    def fit_msd(
        self, *, per_object: bool = False, max_lag_time: float | None = None
    ) -> pd.DataFrame:
        """Power-law fit ``MSD = A * tau**alpha`` by least squares in log-log space.

        Parameters
        ----------
        per_object : bool, optional
            Also fit each object's MSD (rows with its ``object_id``).
        max_lag_time : float, optional
            Only fit lags up to this time (short lags are the most reliable).

        Returns
        -------
        DataFrame
            ``object_id`` (``<NA>`` for the ensemble), ``A``, ``alpha``,
            ``r_squared``, ``n_lags``. ``alpha`` ~ 1 is diffusive, < 1 confined or
            sub-diffusive, ~ 2 directed motion.
        """
        rows = [
            {
                "object_id": pd.NA,
                **fit_power_law(self.emsd["lag_time"], self.emsd["msd"], max_lag_time=max_lag_time),
            }
        ]
        if per_object:
            for oid, obj in self.msd.groupby("object_id", sort=True):
                fit = fit_power_law(obj["lag_time"], obj["msd"], max_lag_time=max_lag_time)
                rows.append({"object_id": int(oid), **fit})
        table = pd.DataFrame(rows, columns=["object_id", "A", "alpha", "r_squared", "n_lags"])
        table["object_id"] = table["object_id"].astype("Int64")
        return table

    def sidecar(self, files: Sequence[Path] = ()) -> dict[str, Any]:
        """The JSON-serialisable description written next to the tables."""
        return {
            "format": "napari-sam2v-measurements",
            "format_version": 1,
            "package": "napari-sam2v",
            "package_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "source": self.source,
            "calibration": self.calibration.to_dict(),
            "n_frames": self.n_frames,
            "untracked_frames": self.untracked_frames,
            "frame_times": self.frame_times,
            "frame_shape": list(self.frame_shape),
            "growth_threshold": self.growth_threshold,
            "objects": [{"id": o.id, "name": o.name, "color": o.color} for o in self.objects],
            "rows": {name: len(t) for name, t in self.tables().items()},
            "units": self.units,
            "files": [Path(f).name for f in files],
        }

    def save(self, directory: str | os.PathLike, *, format: str = "csv") -> list[Path]:
        """Write every table and a ``measurements.json`` sidecar into ``directory``.

        Parameters
        ----------
        directory : path-like
            Output directory (created when missing).
        format : {'csv', 'parquet', 'xlsx'}
            ``csv`` and ``parquet`` write one file per table; ``xlsx`` one workbook
            with a sheet per table. Text cells are neutralised against spreadsheet
            formula injection in csv and xlsx.

        Returns
        -------
        list of Path
            The files written, sidecar last.
        """
        files = write_tables(self.tables(), directory, format=format)
        sidecar = write_sidecar(Path(directory) / SIDECAR_NAME, self.sidecar(files))
        return [*files, sidecar]

    def tracks_layer_data(self) -> tuple[np.ndarray, dict[str, Any], str]:
        """Centroid tracks as a napari Tracks layer data tuple.

        Returns
        -------
        tuple
            ``(data, kwargs, "tracks")`` where ``data`` is ``(N, 4)`` float
            ``track_id, t, y, x`` in frames and pixels (the grid of the labels layer)
            and ``kwargs["features"]`` holds per-point ``speed`` (of the step that ends
            at the point; a track's first point takes the speed of the step leaving
            it, a single-point track 0, as napari cannot colour NaN), ``area``,
            ``area_px``, ``time`` and ``frame`` for colouring.
        """
        ordered = self.frames.sort_values(["object_id", "frame"], kind="stable")
        data = np.column_stack(
            (
                ordered["object_id"].to_numpy(dtype=np.float64),
                ordered["frame"].to_numpy(dtype=np.float64),
                ordered["centroid_y_px"].to_numpy(dtype=np.float64),
                ordered["centroid_x_px"].to_numpy(dtype=np.float64),
            )
        ).reshape(-1, 4)
        steps = self.steps()[["object_id", "frame", "speed"]]
        features = ordered[["object_id", "frame", "time", "area", "area_px"]].merge(
            steps, on=["object_id", "frame"], how="left"
        )
        # napari's colour normalisation breaks on NaN: a track's first point takes the
        # speed of the step leaving it, and a single-point track gets 0.
        features["speed"] = (
            features.groupby("object_id")["speed"].bfill().fillna(0.0).to_numpy(dtype=float)
        )
        features = features[["speed", "area", "area_px", "time", "frame"]].reset_index(drop=True)
        kwargs = {
            "name": "tracks",
            "features": features,
            "metadata": {"calibration": self.calibration.to_dict(), "source": self.source},
        }
        return data, kwargs, "tracks"

    def plot_area(self, **kwargs: Any) -> Figure:
        """Area over time per object; see :func:`napari_sam2v.analysis.plots.plot_area`."""
        return plots.plot_area(self, **kwargs)

    def plot_trajectories(self, image: np.ndarray | None = None, **kwargs: Any) -> Figure:
        """Trajectories over the first frame; see :func:`plots.plot_trajectories`."""
        return plots.plot_trajectories(self, image=image, **kwargs)

    def plot_speed(self, **kwargs: Any) -> Figure:
        """Distribution of step speeds; see :func:`plots.plot_speed`."""
        return plots.plot_speed(self, **kwargs)

    def plot_msd(self, **kwargs: Any) -> Figure:
        """MSD curves with the power-law fit; see :func:`plots.plot_msd`."""
        return plots.plot_msd(self, **kwargs)

    def plot(self, kind: str = "area", **kwargs: Any) -> Figure:
        """One plot by name: ``area``, ``trajectories``, ``speed`` or ``msd``."""
        makers = {
            "area": self.plot_area,
            "trajectories": self.plot_trajectories,
            "speed": self.plot_speed,
            "msd": self.plot_msd,
        }
        if kind not in makers:
            raise ExportError(f"unknown plot {kind!r}; choose one of {', '.join(makers)}")
        return makers[kind](**kwargs)

    def save_plots(
        self,
        directory: str | os.PathLike,
        *,
        formats: Sequence[str] = ("png", "svg"),
        dpi: int = 150,
    ) -> list[Path]:
        """Write the four standard plots in each format into ``directory``.

        Parameters
        ----------
        directory : path-like
            Output directory (created when missing).
        formats : sequence of {'png', 'svg', 'pdf'}, optional
            File formats to write.
        dpi : int, optional
            Resolution of raster formats.

        Returns
        -------
        list of Path
            ``area.<fmt>``, ``trajectories.<fmt>``, ``speed.<fmt>``, ``msd.<fmt>``.
        """
        bad = [f for f in formats if f not in _PLOT_FORMATS]
        if bad or not formats:
            raise ExportError(
                f"unknown plot format(s) {bad or list(formats)}; choose from "
                f"{', '.join(_PLOT_FORMATS)}"
            )
        out = Path(directory)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(f"{out}: cannot create the plot directory ({exc})") from exc
        written = []
        for kind in ("area", "trajectories", "speed", "msd"):
            fig = self.plot(kind)
            for fmt in formats:
                target = out / f"{kind}.{fmt}"
                try:
                    fig.savefig(target, format=fmt, dpi=dpi)
                except OSError as exc:
                    raise ExportError(f"{target}: cannot write the plot ({exc})") from exc
                written.append(target)
        return written
