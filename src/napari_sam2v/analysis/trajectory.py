"""Per-track statistics and mean squared displacement from per-frame centroids.

Definitions follow TrackMate (Ershov et al. 2022, Nature Methods 19:829-832) for the
track features and trackpy (Allan et al., Zenodo, doi:10.5281/zenodo.1226458) for the
MSD: a lag of ``n`` frames pairs positions exactly ``n`` frames apart, so frames where
an object is absent simply contribute no pair (never a zero position).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from napari_sam2v.errors import InputError

__all__ = [
    "TRACK_COLUMNS",
    "FrameClock",
    "ensemble_msd",
    "fit_power_law",
    "frame_times",
    "growth_class",
    "msd_table",
    "step_table",
    "track_table",
]

TRACK_COLUMNS = (
    "object_id",
    "name",
    "first_frame",
    "last_frame",
    "n_frames",
    "n_missing",
    "duration",
    "path_length",
    "net_displacement",
    "max_distance_from_start",
    "mean_speed",
    "median_speed",
    "max_speed",
    "std_speed",
    "confinement_ratio",
    "mean_straight_line_speed",
    "linearity_of_forward_progression",
    "mean_directional_change_rate",
    "area_mean",
    "area_first",
    "area_last",
    "area_change_pct",
    "growth",
)


def frame_times(frames: np.ndarray, time_scale: float) -> np.ndarray:
    """Times of frame indices, to 12 significant digits.

    ``frames * time_scale`` in binary floating point turns 3 x 10.2 into
    30.599999999999998; rounding each distinct product to 12 significant digits
    (far below any frame interval's precision) gives the 30.6 a reader expects.
    """
    frames = np.asarray(frames, dtype=np.int64)
    if frames.size == 0:
        return np.zeros(0, dtype=np.float64)
    table = np.array([float(f"{k * time_scale:.12g}") for k in range(int(frames.max()) + 1)])
    return table[frames]


def growth_class(change: float, threshold: float) -> str:
    """TagLab-style growth class of a relative area change.

    Parameters
    ----------
    change : float
        ``(area_last - area_first) / area_first``.
    threshold : float
        Relative change (0.05 = 5 %) beyond which an object grows or shrinks.

    Returns
    -------
    str
        ``"grow"``, ``"shrink"``, ``"same"``, or ``""`` when undefined.
    """
    if not math.isfinite(change):
        return ""
    if change > threshold:
        return "grow"
    if change < -threshold:
        return "shrink"
    return "same"


@dataclass(frozen=True)
class FrameClock:
    """When each frame was taken, in the time unit.

    Parameters
    ----------
    interval : float
        Time between frames (the frame interval; 1 when uncalibrated).
    times : ndarray, optional
        The time of every frame index, when the frames are not evenly spaced (a
        variable-frame-rate video's own timestamps); ``interval`` then is their
        median spacing, the step in which MSD lags are counted.
    """

    interval: float
    times: np.ndarray | None = None

    def at(self, frames: np.ndarray) -> np.ndarray:
        """Times of frame indices."""
        if self.times is None:
            return frame_times(frames, self.interval)
        return self.times[np.asarray(frames, dtype=np.int64)]

    def between(self, first: np.ndarray, later: np.ndarray) -> np.ndarray:
        """Time from frame indices ``first`` to ``later`` (element-wise)."""
        if self.times is None:
            return (np.asarray(later) - np.asarray(first)) * self.interval
        return self.at(later) - self.at(first)


def _clock(time_scale: float | FrameClock) -> FrameClock:
    return time_scale if isinstance(time_scale, FrameClock) else FrameClock(float(time_scale))


def step_table(frames: pd.DataFrame, time_scale: float | FrameClock) -> pd.DataFrame:
    """Displacement between consecutive *present* frames of each object.

    Returns a frame per step with ``object_id``, ``frame`` (the later frame),
    ``dt`` (real time between the two frames, gaps included), ``step`` (length) and
    ``speed = step / dt``. ``time_scale`` is the frame interval, or a
    :class:`FrameClock` of frames that are not evenly spaced.
    """
    ordered = frames.sort_values(["object_id", "frame"], kind="stable")
    oid = ordered["object_id"].to_numpy()
    fr = ordered["frame"].to_numpy()
    y = ordered["centroid_y"].to_numpy(dtype=np.float64)
    x = ordered["centroid_x"].to_numpy(dtype=np.float64)
    same = oid[1:] == oid[:-1]
    dt = _clock(time_scale).between(fr[:-1], fr[1:])
    step = np.hypot(y[1:] - y[:-1], x[1:] - x[:-1])
    return pd.DataFrame(
        {
            "object_id": oid[1:][same],
            "frame": fr[1:][same],
            "dy": (y[1:] - y[:-1])[same],
            "dx": (x[1:] - x[:-1])[same],
            "dt": dt[same],
            "step": step[same],
            "speed": step[same] / dt[same],
        }
    )


def _directional_change_rate(steps: pd.DataFrame) -> float:
    """Mean of the turning angle between successive steps divided by the later step's dt."""
    dy = steps["dy"].to_numpy()
    dx = steps["dx"].to_numpy()
    dt = steps["dt"].to_numpy()
    if dy.size < 2:
        return math.nan
    cross = dx[:-1] * dy[1:] - dy[:-1] * dx[1:]
    dot = dx[:-1] * dx[1:] + dy[:-1] * dy[1:]
    moving = (np.hypot(dx[:-1], dy[:-1]) > 0) & (np.hypot(dx[1:], dy[1:]) > 0)
    if not moving.any():
        return math.nan
    angle = np.abs(np.arctan2(cross, dot))[moving]
    return float(np.mean(angle / dt[1:][moving]))


def track_table(
    frames: pd.DataFrame,
    object_ids: list[int],
    names: dict[int, str],
    *,
    time_scale: float | FrameClock,
    growth_threshold: float,
) -> pd.DataFrame:
    """One row per object with TrackMate-style track features and area change.

    Parameters
    ----------
    frames : DataFrame
        The per-frame table (calibrated ``centroid_y``, ``centroid_x``, ``area``).
    object_ids : list of int
        Every object to report, including ones never present (all-NaN row).
    names : dict
        Object names.
    time_scale : float or FrameClock
        Duration of one frame in the time unit, or when each frame was taken.
    growth_threshold : float
        Relative area change for :func:`growth_class`.
    """
    clock = _clock(time_scale)
    steps = step_table(frames, clock)
    by_obj = dict(tuple(frames.groupby("object_id", sort=True)))
    steps_by_obj = dict(tuple(steps.groupby("object_id", sort=True)))
    rows = []
    for oid in object_ids:
        row: dict[str, object] = dict.fromkeys(TRACK_COLUMNS, math.nan)
        row.update(object_id=oid, name=names.get(oid, f"object {oid}"), n_frames=0, growth="")
        obj = by_obj.get(oid)
        if obj is not None and len(obj):
            obj = obj.sort_values("frame")
            fr = obj["frame"].to_numpy()
            y = obj["centroid_y"].to_numpy(dtype=np.float64)
            x = obj["centroid_x"].to_numpy(dtype=np.float64)
            area = obj["area"].to_numpy(dtype=np.float64)
            st = steps_by_obj.get(oid)
            speed = st["speed"].to_numpy() if st is not None else np.zeros(0)
            duration = float(clock.between(fr[:1], fr[-1:])[0])
            path = float(st["step"].sum()) if st is not None else 0.0
            net = float(math.hypot(y[-1] - y[0], x[-1] - x[0]))
            row.update(
                first_frame=int(fr[0]),
                last_frame=int(fr[-1]),
                n_frames=int(fr.size),
                n_missing=int(fr[-1] - fr[0] + 1 - fr.size),
                duration=duration,
                path_length=path,
                net_displacement=net,
                max_distance_from_start=float(np.max(np.hypot(y - y[0], x - x[0]))),
                area_mean=float(area.mean()),
                area_first=float(area[0]),
                area_last=float(area[-1]),
            )
            if speed.size:
                mean_speed = float(speed.mean())
                straight = net / duration
                row.update(
                    mean_speed=mean_speed,
                    median_speed=float(np.median(speed)),
                    max_speed=float(speed.max()),
                    std_speed=float(speed.std(ddof=1)) if speed.size > 1 else math.nan,
                    confinement_ratio=net / path if path > 0 else math.nan,
                    mean_straight_line_speed=straight,
                    linearity_of_forward_progression=(
                        straight / mean_speed if mean_speed > 0 else math.nan
                    ),
                    mean_directional_change_rate=_directional_change_rate(st),
                )
            change = (area[-1] - area[0]) / area[0] if area[0] > 0 else math.nan
            row["area_change_pct"] = 100.0 * change
            row["growth"] = growth_class(change, growth_threshold)
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(TRACK_COLUMNS))
    for col in ("first_frame", "last_frame", "n_missing"):
        table[col] = table[col].astype("Int64")
    table["n_frames"] = table["n_frames"].astype(np.int64)
    return table


def _msd_one(
    frames: np.ndarray, pos: np.ndarray, max_lag: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lags, MSD and pair counts of one trajectory (NaN MSD where no pair exists)."""
    span = int(frames[-1] - frames[0]) + 1
    dense = np.full((span, pos.shape[1]), np.nan)
    dense[frames - frames[0]] = pos
    present = np.zeros(span, dtype=bool)
    present[frames - frames[0]] = True
    top = span - 1 if max_lag is None else min(int(max_lag), span - 1)
    lags = np.arange(1, top + 1)
    msd = np.full(lags.size, np.nan)
    pairs = np.zeros(lags.size, dtype=np.int64)
    for i, lag in enumerate(lags):
        ok = present[lag:] & present[:-lag]
        n = int(ok.sum())
        pairs[i] = n
        if n:
            diff = dense[lag:][ok] - dense[:-lag][ok]
            msd[i] = float(np.mean(np.sum(diff * diff, axis=1)))
    return lags, msd, pairs


def _msd_one_timed(
    times: np.ndarray, pos: np.ndarray, interval: float, max_lag: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lags, MSD, pair counts and mean lag times of a trajectory with uneven frame times.

    Every pair of positions is grouped by its real time apart, rounded to whole
    ``interval`` s (the median frame spacing); ``lag_time`` is the mean time apart of
    a group's pairs, or ``lag * interval`` where a lag has no pair.
    """
    top_possible = int(np.rint((times[-1] - times[0]) / interval))
    top = top_possible if max_lag is None else min(int(max_lag), top_possible)
    sums = np.zeros(top + 1)
    pairs = np.zeros(top + 1, dtype=np.int64)
    dt_sums = np.zeros(top + 1)
    for offset in range(1, times.size):
        dt = times[offset:] - times[:-offset]
        if dt.min() > (top + 0.5) * interval:
            break  # later offsets are further apart still (times increase)
        lag = np.rint(dt / interval).astype(np.int64)
        keep = (lag >= 1) & (lag <= top)
        diff = pos[offset:][keep] - pos[:-offset][keep]
        sums += np.bincount(lag[keep], np.sum(diff * diff, axis=1), minlength=top + 1)
        pairs += np.bincount(lag[keep], minlength=top + 1)
        dt_sums += np.bincount(lag[keep], dt[keep], minlength=top + 1)
    lags = np.arange(1, top + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        msd = np.where(pairs[1:] > 0, sums[1:] / pairs[1:], np.nan)
        lag_time = np.where(pairs[1:] > 0, dt_sums[1:] / pairs[1:], lags * interval)
    return lags, msd, pairs[1:], lag_time


def _effective_n(n_points: int, lags: np.ndarray) -> np.ndarray:
    """Effective number of independent MSD measurements (Qian et al. 1991, eq. B4)."""
    t = lags.astype(np.float64)
    n = float(n_points)
    with np.errstate(divide="ignore", invalid="ignore"):
        long = 1 / (1 + ((n - t) ** 3 + 5 * t - 4 * (n - t) ** 2 * t - n) / (6 * (n - t) * t**2))
        short = 6 * (n - t) ** 2 * t / (2 * n - t + 4 * n * t**2 - 5 * t**3)
    return np.where(t > n / 2, long, short)


def msd_table(
    frames: pd.DataFrame, *, time_scale: float | FrameClock, max_lag: int | None
) -> pd.DataFrame:
    """Per-object MSD, one row per object and lag ``1 .. min(max_lag, span - 1)``.

    As in trackpy, lags without any pair (gaps) are kept with NaN ``msd`` and
    ``n_pairs = 0``. Columns: ``object_id, lag_frames, lag_time, msd, n_pairs`` and
    ``n_effective`` (trackpy's weight for the ensemble average, used by
    :func:`ensemble_msd`). Objects present in fewer than two frames have no rows.

    ``time_scale`` is the frame interval, or a :class:`FrameClock`. With a clock of
    frames that are not evenly spaced, pairs are grouped by their real time apart in
    whole median intervals (``lag_frames``), and ``lag_time`` is the mean time apart
    of each group's pairs.

    Raises
    ------
    InputError
        When ``max_lag`` is smaller than 1.
    """
    if max_lag is not None and max_lag < 1:
        raise InputError(f"max_lag must be at least 1, got {max_lag}")
    clock = _clock(time_scale)
    parts = []
    for oid, obj in frames.sort_values(["object_id", "frame"]).groupby("object_id", sort=True):
        fr = obj["frame"].to_numpy(dtype=np.int64)
        if fr.size < 2:
            continue
        pos = obj[["centroid_y", "centroid_x"]].to_numpy(dtype=np.float64)
        if clock.times is None:
            lags, msd, pairs = _msd_one(fr, pos, max_lag)
            lag_time = frame_times(lags, clock.interval)
            span = int(fr[-1] - fr[0]) + 1
        else:
            times = clock.at(fr)
            lags, msd, pairs, lag_time = _msd_one_timed(times, pos, clock.interval, max_lag)
            span = int(np.rint((times[-1] - times[0]) / clock.interval)) + 1
        weight = _effective_n(span, lags) * fr.size / span
        total = weight.sum()
        weight = np.where(np.isnan(msd), 0.0, weight)
        if weight.sum() != total:
            weight = weight * total / weight.sum()
        parts.append(
            pd.DataFrame(
                {
                    "object_id": np.full(lags.size, oid, dtype=np.int64),
                    "lag_frames": lags.astype(np.int64),
                    "lag_time": lag_time,
                    "msd": msd,
                    "n_pairs": pairs,
                    "n_effective": weight,
                }
            )
        )
    if not parts:
        return pd.DataFrame(
            {
                "object_id": pd.Series(dtype=np.int64),
                "lag_frames": pd.Series(dtype=np.int64),
                "lag_time": pd.Series(dtype=np.float64),
                "msd": pd.Series(dtype=np.float64),
                "n_pairs": pd.Series(dtype=np.int64),
                "n_effective": pd.Series(dtype=np.float64),
            }
        )
    return pd.concat(parts, ignore_index=True)


def ensemble_msd(per_object: pd.DataFrame) -> pd.DataFrame:
    """Ensemble MSD over objects for each lag.

    Parameters
    ----------
    per_object : DataFrame
        Output of :func:`msd_table`, including its lags without pairs (NaN ``msd``),
        which trackpy's weighting needs.

    Returns
    -------
    DataFrame
        ``lag_frames, lag_time, msd, n_pairs, n_objects, msd_effective_n`` for every
        lag with at least one pair. ``msd`` is weighted by the number of pairs (every
        displacement counts once); ``msd_effective_n`` uses trackpy's weights
        (effective independent measurements, Qian et al. 1991) and equals
        ``trackpy.motion.emsd`` on the same trajectories.
    """
    df = per_object.assign(
        wsum=lambda d: d["msd"].fillna(0.0) * d["n_pairs"],
        esum=lambda d: d["msd"].fillna(0.0) * d["n_effective"],
        has=lambda d: d["n_pairs"] > 0,
    )
    grouped = df.groupby("lag_frames", sort=True)
    # Frames not evenly spaced give each object its own mean lag time: pair-weighted.
    timed = df.assign(tsum=df["lag_time"] * df["n_pairs"]).groupby("lag_frames", sort=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_time = timed["tsum"].sum() / grouped["n_pairs"].sum()
    uneven = grouped["lag_time"].max() != grouped["lag_time"].min()
    out = pd.DataFrame(
        {
            "lag_time": grouped["lag_time"].first().where(~uneven, mean_time),
            "n_pairs": grouped["n_pairs"].sum(),
            "n_objects": grouped["has"].sum(),
            "wsum": grouped["wsum"].sum(),
            "esum": grouped["esum"].sum(),
            "neff": grouped["n_effective"].sum(),
        }
    )
    out = out[out["n_pairs"] > 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        msd = out["wsum"] / out["n_pairs"]
        eff = out["esum"] / out["neff"]
    result = pd.DataFrame(
        {
            "lag_frames": out.index.to_numpy(dtype=np.int64),
            "lag_time": out["lag_time"].to_numpy(dtype=np.float64),
            "msd": msd.to_numpy(dtype=np.float64),
            "n_pairs": out["n_pairs"].to_numpy(dtype=np.int64),
            "n_objects": out["n_objects"].to_numpy(dtype=np.int64),
            "msd_effective_n": eff.to_numpy(dtype=np.float64),
        }
    )
    return result.reset_index(drop=True)


def fit_power_law(
    lag_time: np.ndarray, msd: np.ndarray, *, max_lag_time: float | None = None
) -> dict[str, float]:
    """Least-squares fit of ``log MSD = log A + alpha log tau``.

    Returns ``{"A", "alpha", "r_squared", "n_lags"}`` (NaN when fewer than two lags
    with positive MSD remain).
    """
    tau = np.asarray(lag_time, dtype=np.float64)
    val = np.asarray(msd, dtype=np.float64)
    ok = np.isfinite(val) & (val > 0) & (tau > 0)
    if max_lag_time is not None:
        ok &= tau <= max_lag_time
    n = int(ok.sum())
    if n < 2:
        return {"A": math.nan, "alpha": math.nan, "r_squared": math.nan, "n_lags": n}
    lx, ly = np.log(tau[ok]), np.log(val[ok])
    alpha, intercept = np.polyfit(lx, ly, 1)
    pred = intercept + alpha * lx
    ss_res = float(np.sum((ly - pred) ** 2))
    ss_tot = float(np.sum((ly - ly.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return {"A": float(math.exp(intercept)), "alpha": float(alpha), "r_squared": r2, "n_lags": n}
