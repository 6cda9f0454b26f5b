"""Matplotlib figures of a :class:`~napari_sam2v.analysis.Measurements`.

Every function builds and returns an explicit :class:`matplotlib.figure.Figure`;
pyplot's global state is never touched, so the plots are safe in threads, in the
napari widget and in headless batch runs (``Figure.savefig`` renders with Agg).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:  # pragma: no cover
    from napari_sam2v.analysis.measurements import Measurements

__all__ = ["plot_area", "plot_msd", "plot_speed", "plot_trajectories"]


def _colors(m: Measurements) -> dict[int, str]:
    return {o.id: o.color for o in m.objects}


def _names(m: Measurements) -> dict[int, str]:
    return {o.id: o.name for o in m.objects}


def _legend(ax: Any, n: int) -> None:
    """Legend with a light frame (readable over images) for up to 12 objects."""
    if 0 < n <= 12:
        ax.legend(fontsize="small", frameon=True, framealpha=0.8)


def plot_area(m: Measurements, *, figsize: tuple[float, float] = (6.4, 4.0)) -> Figure:
    """Area over time, one line per object (gaps where the object is absent).

    Parameters
    ----------
    m : Measurements
    figsize : tuple of float, optional
        Figure size in inches.
    """
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    presence = m.presence
    colors, names = _colors(m), _names(m)
    for oid, obj in m.frames.groupby("object_id", sort=True):
        rows = presence[presence["object_id"] == oid]
        series = np.full(len(rows), np.nan)
        series[obj["frame"].to_numpy()] = obj["area"].to_numpy()
        ax.plot(rows["time"], series, color=colors.get(oid), label=names.get(oid, str(oid)))
    ax.set_xlabel(f"time ({m.calibration.time_unit})")
    ax.set_ylabel(f"area ({m.calibration.unit}²)")
    ax.set_title("Object area over time")
    _legend(ax, m.frames["object_id"].nunique())
    return fig


def plot_trajectories(
    m: Measurements,
    image: np.ndarray | None = None,
    *,
    figsize: tuple[float, float] = (6.4, 6.4),
) -> Figure:
    """Centroid trajectories drawn over the first frame.

    Parameters
    ----------
    m : Measurements
    image : ndarray, optional
        ``(y, x)`` or ``(y, x, 3|4)`` background; defaults to the first intensity frame
        given to ``measure`` (a plain frame outline when there was none).
    figsize : tuple of float, optional
    """
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    scale = m.calibration.spatial_scale
    height, width = m.frame_shape
    extent = (-0.5 * scale, (width - 0.5) * scale, (height - 0.5) * scale, -0.5 * scale)
    background = image if image is not None else m.first_image
    if background is not None:
        bg = np.asarray(background)
        if bg.ndim == 3 and bg.shape[-1] not in (3, 4):
            bg = bg[..., 0]
        ax.imshow(bg, cmap="gray" if bg.ndim == 2 else None, extent=extent)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    colors, names = _colors(m), _names(m)
    for oid, obj in m.frames.groupby("object_id", sort=True):
        obj = obj.sort_values("frame")
        x, y = obj["centroid_x"].to_numpy(), obj["centroid_y"].to_numpy()
        color = colors.get(oid)
        ax.plot(x, y, "-", color=color, lw=1.5, label=names.get(oid, str(oid)))
        ax.plot(x[:1], y[:1], "o", color=color, ms=5)
        ax.plot(x[-1:], y[-1:], "s", color=color, ms=5)
    ax.set_aspect("equal")
    ax.set_xlabel(f"x ({m.calibration.unit})")
    ax.set_ylabel(f"y ({m.calibration.unit})")
    ax.set_title("Trajectories (o start, ■ end)")
    _legend(ax, m.frames["object_id"].nunique())
    return fig


def plot_speed(
    m: Measurements, *, bins: int = 30, figsize: tuple[float, float] = (6.4, 4.0)
) -> Figure:
    """Histogram of step speeds (all objects, gaps divided by their real duration)."""
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    speed = m.steps()["speed"].to_numpy()
    speed = speed[np.isfinite(speed)]
    if speed.size:
        ax.hist(speed, bins=bins, color="#0072b2", alpha=0.85)
        ax.axvline(float(np.median(speed)), color="#d55e00", ls="--", label="median")
        ax.legend(fontsize="small", frameon=False)
    else:
        ax.text(0.5, 0.5, "no steps to measure", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(f"speed ({m.calibration.unit}/{m.calibration.time_unit})")
    ax.set_ylabel("steps")
    ax.set_title("Speed distribution")
    return fig


def plot_msd(
    m: Measurements,
    *,
    fit: bool = True,
    per_object: bool = True,
    figsize: tuple[float, float] = (6.4, 4.5),
) -> Figure:
    """MSD against lag time on log-log axes, per object and ensemble, with the fit."""
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    colors = _colors(m)
    drawn = False
    if per_object:
        for oid, obj in m.msd.groupby("object_id", sort=True):
            ok = obj["msd"] > 0
            if ok.any():
                ax.plot(obj["lag_time"][ok], obj["msd"][ok], color=colors.get(oid), alpha=0.35)
                drawn = True
    em = m.emsd[m.emsd["msd"] > 0]
    if len(em):
        ax.plot(em["lag_time"], em["msd"], "k-", lw=2, label="ensemble")
        drawn = True
        if fit:
            row = m.fit_msd().iloc[0]
            if np.isfinite(row["alpha"]):
                tau = em["lag_time"].to_numpy()
                ax.plot(
                    tau,
                    row["A"] * tau ** row["alpha"],
                    "--",
                    color="#d55e00",
                    label=f"fit α = {row['alpha']:.2f}",
                )
        ax.legend(fontsize="small", frameon=False)
    if drawn:
        ax.set_xscale("log")
        ax.set_yscale("log")
    else:
        ax.text(
            0.5, 0.5, "no MSD (tracks too short)", ha="center", va="center", transform=ax.transAxes
        )
    ax.set_xlabel(f"lag time ({m.calibration.time_unit})")
    ax.set_ylabel(f"MSD ({m.calibration.unit}²)")
    ax.set_title("Mean squared displacement")
    return fig
