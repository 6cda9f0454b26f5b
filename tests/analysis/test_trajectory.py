"""Track statistics, MSD against trackpy, calibration and growth."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import trackpy
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_sam2v.analysis import measure
from napari_sam2v.analysis.trajectory import (
    FrameClock,
    ensemble_msd,
    fit_power_law,
    growth_class,
    msd_table,
)

from .conftest import moving_labels

# trackpy (the reference) still uses pandas idioms that pandas 3 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")


def _random_tracks(seed: int, n_objects: int, n_frames: int, p_missing: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for oid in range(1, n_objects + 1):
        present = rng.random(n_frames) >= p_missing
        present[rng.integers(n_frames)] = True
        pos = np.cumsum(rng.normal(0, 2, (n_frames, 2)), axis=0) + rng.uniform(0, 100, 2)
        for t in np.flatnonzero(present):
            rows.append((oid, int(t), pos[t, 0], pos[t, 1]))
    return pd.DataFrame(rows, columns=["object_id", "frame", "centroid_y", "centroid_x"])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    n_objects=st.integers(1, 5),
    n_frames=st.integers(2, 40),
    p_missing=st.sampled_from([0.0, 0.2, 0.5]),
    max_lag=st.sampled_from([3, 10, 100]),
)
def test_msd_equals_trackpy(seed, n_objects, n_frames, p_missing, max_lag) -> None:
    tracks = _random_tracks(seed, n_objects, n_frames, p_missing)
    dt = 0.25
    ours = msd_table(tracks, time_scale=dt, max_lag=max_lag)
    tp = tracks.rename(columns={"object_id": "particle", "centroid_y": "y", "centroid_x": "x"})
    for oid, traj in tp.groupby("particle"):
        mine = ours[ours["object_id"] == oid].set_index("lag_frames")
        if len(traj) < 2:
            assert mine.empty
            continue
        ref = trackpy.motion.msd(traj, mpp=1.0, fps=1 / dt, max_lagtime=max_lag)
        ref_lags = np.rint(ref["lagt"].to_numpy() / dt).astype(int)
        np.testing.assert_array_equal(mine.index.to_numpy(), ref_lags)
        np.testing.assert_allclose(mine["msd"], ref["msd"], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(mine["lag_time"], ref["lagt"], rtol=1e-12)
        # n_pairs: brute-force count of pairs exactly `lag` frames apart.
        frames = set(traj["frame"])
        for lag, n in mine["n_pairs"].items():
            assert n == sum((f + lag) in frames for f in frames)
    multi = tp.groupby("particle").filter(lambda d: len(d) >= 2)
    if multi.empty:
        return
    ens = ensemble_msd(ours)
    ref_e = trackpy.motion.emsd(multi, mpp=1.0, fps=1 / dt, max_lagtime=max_lag)
    # trackpy reports lags where no object has a pair with a NaN lag time; skip those.
    ref_e = ref_e[np.isfinite(ref_e.index.to_numpy())]
    lags = np.rint(ref_e.index.to_numpy() / dt).astype(int)
    got = ens.set_index("lag_frames").reindex(lags)
    finite = ref_e.to_numpy() > 0
    assert finite.sum() == (ens["msd"] > 0).sum()
    np.testing.assert_allclose(
        got["msd_effective_n"].to_numpy()[finite], ref_e.to_numpy()[finite], rtol=1e-9, atol=1e-9
    )
    # Pair-weighted ensemble = brute force over every displacement of every object.
    for lag, row in ens.set_index("lag_frames").iterrows():
        sq = []
        for _, traj in tracks.groupby("object_id"):
            pos = traj.set_index("frame")[["centroid_y", "centroid_x"]]
            later = pos.reindex(pos.index + lag).to_numpy()
            d = later - pos.to_numpy()
            ok = ~np.isnan(d).any(axis=1)
            sq.extend(np.sum(d[ok] ** 2, axis=1))
        assert row["n_pairs"] == len(sq)
        assert math.isclose(row["msd"], float(np.mean(sq)), rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    n_frames=st.integers(2, 40),
    p_missing=st.sampled_from([0.0, 0.3]),
    max_lag=st.sampled_from([3, 100, None]),
)
def test_msd_over_evenly_spaced_frame_times_equals_the_frame_lag_msd(
    seed, n_frames, p_missing, max_lag
) -> None:
    """A clock of even frame times groups pairs exactly as frame lags do (trackpy's way)."""
    tracks = _random_tracks(seed, 3, n_frames, p_missing)
    dt = 0.25
    clock = FrameClock(dt, np.arange(n_frames) * dt)
    by_frames = msd_table(tracks, time_scale=dt, max_lag=max_lag)
    by_times = msd_table(tracks, time_scale=clock, max_lag=max_lag)
    pd.testing.assert_frame_equal(
        by_times.drop(columns="lag_time"), by_frames.drop(columns="lag_time"), rtol=1e-12
    )
    np.testing.assert_allclose(by_times["lag_time"], by_frames["lag_time"], rtol=1e-12)


def _uneven_times(n_frames: int, seed: int) -> np.ndarray:
    """Frame times 0.1 s apart, with every third step 0.3 s (a variable-rate camera)."""
    steps = np.where(np.arange(n_frames - 1) % 3 == 2, 0.3, 0.1)
    steps += np.random.default_rng(seed).uniform(-0.01, 0.01, steps.size)  # jitter
    return np.concatenate([[0.0], np.cumsum(steps)])


def test_msd_of_uneven_frame_times_groups_pairs_by_their_time_apart() -> None:
    times = _uneven_times(30, 1)
    rng = np.random.default_rng(5)
    pos = np.cumsum(rng.normal(0, 1, (30, 2)), axis=0)
    present = np.flatnonzero(rng.random(30) > 0.2)
    tracks = pd.DataFrame(
        {"object_id": 1, "frame": present, "centroid_y": pos[present, 0],
         "centroid_x": pos[present, 1]}
    )  # fmt: skip
    got = msd_table(tracks, time_scale=FrameClock(0.1, times), max_lag=8).set_index("lag_frames")
    # brute force: every pair of present frames, binned to the nearest 0.1 s
    groups: dict[int, list[tuple[float, float]]] = {}
    for i, a in enumerate(present):
        for b in present[i + 1 :]:
            lag = round((times[b] - times[a]) / 0.1)
            if 1 <= lag <= 8:
                d2 = float(np.sum((pos[b] - pos[a]) ** 2))
                groups.setdefault(lag, []).append((times[b] - times[a], d2))
    assert list(got.index) == list(range(1, 9))
    for lag, row in got.iterrows():
        pairs = groups.get(lag, [])
        assert row["n_pairs"] == len(pairs)
        if pairs:
            assert row["msd"] == pytest.approx(np.mean([d2 for _, d2 in pairs]), rel=1e-12)
            assert row["lag_time"] == pytest.approx(np.mean([t for t, _ in pairs]), rel=1e-12)
        else:
            assert math.isnan(row["msd"]) and row["lag_time"] == pytest.approx(lag * 0.1)


def test_directed_motion_at_uneven_frame_times_fits_alpha_two() -> None:
    """x = v t in real time: MSD = v^2 tau^2 only when lags are real times apart."""
    times = np.round(_uneven_times(40, 2), 2)  # whole 0.01 s: each group one time apart
    velocity = 3.0
    tracks = pd.DataFrame(
        {"object_id": [1, 2] * 40, "frame": np.repeat(np.arange(40), 2),
         "centroid_y": 0.0, "centroid_x": np.repeat(velocity * times, 2)}
    )  # fmt: skip
    per_object = msd_table(tracks, time_scale=FrameClock(0.1, times), max_lag=20)
    ens = ensemble_msd(per_object)
    fit = fit_power_law(ens["lag_time"], ens["msd"])
    assert fit["alpha"] == pytest.approx(2.0, abs=0.02)
    assert fit["A"] == pytest.approx(velocity**2, rel=0.05)
    # counting frame lags at the median interval instead mixes 0.1 s and 0.3 s steps
    naive = ensemble_msd(msd_table(tracks, time_scale=0.1, max_lag=20))
    naive_fit = fit_power_law(naive["lag_time"], naive["msd"])
    assert abs(naive_fit["A"] - velocity**2) > 0.5 * velocity**2


def test_measured_msd_equals_trackpy_end_to_end(labels_with_gap) -> None:
    m = measure(labels_with_gap, pixel_size=0.5, unit="um", frame_interval=2.0, time_unit="s")
    traj = m.frames.rename(
        columns={"object_id": "particle", "centroid_y_px": "y", "centroid_x_px": "x"}
    )[["particle", "frame", "y", "x"]]
    ref = trackpy.motion.imsd(traj, mpp=0.5, fps=0.5, max_lagtime=100)
    for oid in (1, 2):
        mine = m.msd[m.msd["object_id"] == oid]
        col = ref[oid].dropna()
        np.testing.assert_allclose(mine["msd"], col.to_numpy(), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(mine["lag_time"], col.index.to_numpy(), rtol=1e-12)
    ref_e = trackpy.motion.emsd(traj, mpp=0.5, fps=0.5, max_lagtime=100)
    np.testing.assert_allclose(m.emsd["msd_effective_n"], ref_e.to_numpy(), rtol=1e-9)


def test_speed_over_gap_uses_real_time(labels_with_gap) -> None:
    dt = 3.0
    m = measure(labels_with_gap, frame_interval=dt, time_unit="min")
    steps = m.steps()
    gap = steps[(steps["object_id"] == 1) & (steps["frame"] == 5)].iloc[0]
    # Object 1 moves 2 px/frame; frames 2 -> 5 is 6 px over 3 frames = 9 min.
    assert gap["dt"] == pytest.approx(3 * dt)
    assert gap["speed"] == pytest.approx(6.0 / (3 * dt))
    assert np.allclose(steps[steps["object_id"] == 1]["speed"], 2.0 / dt)
    track = m.tracks.set_index("object_id").loc[1]
    assert track["n_frames"] == 8 and track["n_missing"] == 2
    assert track["duration"] == pytest.approx(9 * dt)
    assert track["path_length"] == pytest.approx(18.0)
    assert track["net_displacement"] == pytest.approx(18.0)
    assert track["confinement_ratio"] == pytest.approx(1.0)
    assert track["mean_speed"] == pytest.approx(2.0 / dt)
    assert track["mean_straight_line_speed"] == pytest.approx(18.0 / (9 * dt))
    assert track["linearity_of_forward_progression"] == pytest.approx(1.0)
    assert track["mean_directional_change_rate"] == pytest.approx(0.0)


def test_track_statistics_of_a_square_path() -> None:
    # A 4x4 square: corners visited at frames 0..4, 90 degree turns at each corner.
    labels = np.zeros((5, 40, 40), np.uint8)
    corners = [(10, 10), (10, 20), (20, 20), (20, 10), (10, 10)]
    for t, (y, x) in enumerate(corners):
        labels[t, y - 1 : y + 2, x - 1 : x + 2] = 1
    tr = measure(labels, frame_interval=2.0, time_unit="s").tracks.iloc[0]
    assert tr["path_length"] == pytest.approx(40.0)
    assert tr["net_displacement"] == pytest.approx(0.0, abs=1e-12)
    assert tr["max_distance_from_start"] == pytest.approx(math.hypot(10, 10))
    assert tr["confinement_ratio"] == pytest.approx(0.0, abs=1e-12)
    assert tr["mean_directional_change_rate"] == pytest.approx((math.pi / 2) / 2.0)
    assert tr["std_speed"] == pytest.approx(0.0)


def test_calibrated_values_are_pixels_times_scale() -> None:
    labels = moving_labels(absent={1: {3, 4}})
    raw = measure(labels)
    ps, dt = 0.37, 1.5
    cal = measure(labels, pixel_size=ps, unit="mm", frame_interval=dt, time_unit="s")
    f0, f1 = raw.frames, cal.frames
    np.testing.assert_array_equal(f0["area_px"], f1["area_px"])
    np.testing.assert_allclose(f1["area"], f0["area"] * ps**2, rtol=1e-12)
    for col in ("perimeter", "centroid_y", "centroid_x", "equivalent_diameter"):
        np.testing.assert_allclose(f1[col], f0[col] * ps, rtol=1e-12)
    np.testing.assert_allclose(f1["time"], f1["frame"] * dt, rtol=1e-12)
    for col in ("eccentricity", "orientation", "solidity", "circularity"):
        np.testing.assert_allclose(f1[col], f0[col], rtol=1e-12)
    t0, t1 = raw.tracks, cal.tracks
    for col in ("path_length", "net_displacement", "max_distance_from_start"):
        np.testing.assert_allclose(t1[col], t0[col] * ps, rtol=1e-12)
    for col in ("mean_speed", "median_speed", "max_speed", "std_speed"):
        np.testing.assert_allclose(t1[col], t0[col] * ps / dt, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t1["duration"], t0["duration"] * dt, rtol=1e-12)
    np.testing.assert_allclose(t1["area_mean"], t0["area_mean"] * ps**2, rtol=1e-12)
    np.testing.assert_allclose(
        t1["mean_directional_change_rate"], t0["mean_directional_change_rate"] / dt, rtol=1e-12
    )
    np.testing.assert_allclose(cal.msd["msd"], raw.msd["msd"] * ps**2, rtol=1e-12)
    np.testing.assert_allclose(cal.msd["lag_time"], raw.msd["lag_frames"] * dt, rtol=1e-12)
    assert raw.units["frames"]["area"] == "px^2" and raw.units["frames"]["time"] == "frame"
    assert cal.units["frames"]["area"] == "mm^2" and cal.units["tracks"]["mean_speed"] == "mm/s"


@pytest.mark.parametrize(
    ("change", "threshold", "expected"),
    [
        (0.051, 0.05, "grow"),
        (0.05, 0.05, "same"),
        (-0.05, 0.05, "same"),
        (-0.0501, 0.05, "shrink"),
        (0.08, 0.1, "same"),
        (float("nan"), 0.05, ""),
    ],
)
def test_growth_rule(change, threshold, expected) -> None:
    assert growth_class(change, threshold) == expected


def test_growth_in_tracks_and_configurable_threshold() -> None:
    labels = moving_labels()
    m = measure(labels)
    obj2 = m.tracks.set_index("object_id").loc[2]
    # Object 2 grows from 5 to 8 rows of 8 px: +60 %.
    assert obj2["area_first"] == 40 and obj2["area_last"] == 64
    assert obj2["area_change_pct"] == pytest.approx(60.0)
    assert obj2["growth"] == "grow"
    assert m.tracks.set_index("object_id").loc[1, "growth"] == "same"
    relaxed = measure(labels, growth_threshold=0.7).tracks.set_index("object_id")
    assert relaxed.loc[2, "growth"] == "same"


def test_power_law_fit_recovers_alpha() -> None:
    tau = np.arange(1, 30) * 0.5
    fit = fit_power_law(tau, 3.0 * tau**1.5)
    assert fit["alpha"] == pytest.approx(1.5) and fit["A"] == pytest.approx(3.0)
    assert fit["r_squared"] == pytest.approx(1.0)
    assert math.isnan(fit_power_law(tau[:1], tau[:1])["alpha"])
    m = measure(moving_labels(n_frames=20))
    table = m.fit_msd(per_object=True)
    # Object 1 moves at constant velocity: ballistic, alpha = 2 exactly; object 2
    # also grows (its centroid drifts unevenly), so its alpha is only close to 2.
    assert table["alpha"].iloc[1] == pytest.approx(2.0, abs=1e-9)
    np.testing.assert_allclose(table["alpha"], 2.0, atol=0.05)
    assert table["object_id"].isna().iloc[0] and list(table["object_id"][1:]) == [1, 2]
