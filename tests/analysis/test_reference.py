"""Per-frame features against scikit-image's ``regionprops_table`` (the reference).

Exact equality where the quantity is an integer or an exact ratio of integers
(area, bbox, solidity); stated tolerances otherwise:
centroid 1e-10 px, perimeter 1e-9 px, equivalent diameter 1e-12 (relative),
eccentricity 1e-6 (closed-form vs. ``eigvalsh`` eigenvalues; the square root amplifies
rounding near 0), orientation 1e-6 rad modulo pi, compared only where the object is
anisotropic (``l1 - l2 > 1e-6 * l1``), since the axis of an isotropic object is undefined.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skimage.measure import regionprops_table

from napari_sam2v.analysis import measure
from napari_sam2v.analysis.features import frame_features

PROPS = (
    "label",
    "area",
    "centroid",
    "bbox",
    "perimeter",
    "eccentricity",
    "orientation",
    "solidity",
    "equivalent_diameter_area",
    "inertia_tensor_eigvals",
)


@st.composite
def label_videos(draw: st.DrawFn) -> np.ndarray:
    """Random small label videos: blobs, rectangles, single pixels, border touching,
    objects vanishing and reappearing, objects touching each other."""
    n_frames = draw(st.integers(1, 4))
    height = draw(st.integers(1, 24))
    width = draw(st.integers(1, 24))
    n_obj = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    video = np.zeros((n_frames, height, width), np.uint16)
    for t in range(n_frames):
        for oid in rng.permutation(np.arange(1, n_obj + 1)):
            kind = rng.integers(0, 5)
            if kind == 0:  # vanished in this frame
                continue
            if kind == 1:  # one pixel
                video[t, rng.integers(height), rng.integers(width)] = oid
            elif kind == 2:  # rectangle, possibly clipped at the border
                y0, x0 = rng.integers(-3, height), rng.integers(-3, width)
                y1, x1 = y0 + rng.integers(1, 10), x0 + rng.integers(1, 10)
                video[t, max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = oid
            else:  # random speckle blob, possibly disconnected and concave
                yy, xx = np.mgrid[:height, :width]
                cy, cx = rng.uniform(-2, height + 2), rng.uniform(-2, width + 2)
                r = rng.uniform(0.5, 8)
                mask = ((yy - cy) ** 2 / rng.uniform(0.3, 3) + (xx - cx) ** 2) <= r * r
                mask &= rng.random((height, width)) < rng.uniform(0.5, 1.0)
                video[t][mask] = oid
    return video


def _reference(video: np.ndarray) -> pd.DataFrame:
    parts = []
    for t, frame in enumerate(video):
        if not frame.any():
            continue
        table = pd.DataFrame(regionprops_table(frame, properties=PROPS))
        table.insert(0, "frame", t)
        parts.append(table)
    if not parts:
        return pd.DataFrame(columns=["frame", "label"])
    return pd.concat(parts, ignore_index=True).sort_values(["label", "frame"], kind="stable")


def _compare(video: np.ndarray) -> None:
    got = measure(video).frames
    ref = _reference(video).reset_index(drop=True)
    assert len(got) == len(ref)
    if not len(ref):
        return
    np.testing.assert_array_equal(got["object_id"], ref["label"])
    np.testing.assert_array_equal(got["frame"], ref["frame"])
    np.testing.assert_array_equal(got["area_px"], ref["area"])
    for i, col in enumerate(("bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1")):
        np.testing.assert_array_equal(got[col], ref[f"bbox-{i}"])
    # touches_edge: the object has a pixel in the first or last row or column
    rim = {
        (t, int(v))
        for t, frame in enumerate(video)
        for v in np.unique(np.concatenate([frame[0], frame[-1], frame[:, 0], frame[:, -1]]))
    }
    expected = [(f, o) in rim for o, f in zip(ref["label"], ref["frame"], strict=True)]
    np.testing.assert_array_equal(got["touches_edge"], expected)
    np.testing.assert_allclose(got["centroid_y_px"], ref["centroid-0"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(got["centroid_x_px"], ref["centroid-1"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(got["perimeter"], ref["perimeter"], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(got["solidity"], ref["solidity"])
    np.testing.assert_allclose(
        got["equivalent_diameter"], ref["equivalent_diameter_area"], rtol=1e-12
    )
    np.testing.assert_allclose(got["eccentricity"], ref["eccentricity"], rtol=0, atol=1e-6)
    l1 = ref["inertia_tensor_eigvals-0"].to_numpy()
    l2 = ref["inertia_tensor_eigvals-1"].to_numpy()
    aniso = (l1 - l2) > 1e-6 * l1
    diff = np.angle(np.exp(2j * (got["orientation"].to_numpy() - ref["orientation"].to_numpy())))
    assert np.all(np.abs(diff[aniso]) / 2 < 1e-6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(label_videos())
def test_frames_equal_regionprops(video: np.ndarray) -> None:
    _compare(video)


def test_large_concave_and_touching_objects_equal_regionprops() -> None:
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:300, :400]
    frame = np.zeros((300, 400), np.int32)
    for oid in range(1, 41):
        cy, cx, r = rng.uniform(0, 300), rng.uniform(0, 400), rng.uniform(3, 60)
        ring = np.abs(np.hypot(yy - cy, (xx - cx) * rng.uniform(0.5, 2)) - r) < rng.uniform(1, 9)
        frame[ring] = oid
    frame[rng.random(frame.shape) < 0.002] = 41  # a sparse, scattered object
    _compare(frame[None])


def test_vanishing_and_reappearing_objects_have_no_zero_rows(labels_with_gap) -> None:
    m = measure(labels_with_gap)
    obj1 = m.frames[m.frames["object_id"] == 1]
    assert sorted(obj1["frame"]) == [0, 1, 2, 5, 6, 7, 8, 9]
    assert (m.frames["area_px"] > 0).all()
    pres = m.presence.set_index(["object_id", "frame"])["present"]
    assert not pres[(1, 3)] and not pres[(1, 4)] and pres[(1, 5)]
    assert pres.loc[2].all()
    assert len(m.presence) == 2 * labels_with_gap.shape[0]


def test_touches_edge_marks_objects_cut_by_the_field_of_view() -> None:
    video = np.zeros((2, 20, 30), np.uint8)
    video[:, 5:10, 10:15] = 1  # inside
    video[0, 12:16, 0:4] = 2  # cut by the left edge on frame 0 ...
    video[1, 12:16, 3:7] = 2  # ... fully inside on frame 1
    video[:, 17:20, 26:30] = 3  # in the bottom-right corner
    frames = measure(video).frames.set_index(["object_id", "frame"])
    assert frames["touches_edge"].dtype == bool
    assert not frames.loc[(1, 0), "touches_edge"] and not frames.loc[(1, 1), "touches_edge"]
    assert frames.loc[(2, 0), "touches_edge"] and not frames.loc[(2, 1), "touches_edge"]
    assert frames.loc[(3, 0), "touches_edge"] and frames.loc[(3, 1), "touches_edge"]
    assert measure(video).units["frames"]["touches_edge"] == "bool"


def test_empty_frame_and_empty_video() -> None:
    feats = frame_features(np.zeros((5, 7), np.uint8))
    assert feats.ids.size == 0 and feats.bbox.shape == (0, 4)
    m = measure(np.zeros((3, 5, 7), np.uint8))
    assert m.frames.empty and m.tracks.empty and m.msd.empty and m.emsd.empty
    assert "area" in m.frames.columns


def test_intensity_matches_regionprops_per_channel() -> None:
    rng = np.random.default_rng(3)
    labels = np.zeros((2, 30, 40), np.uint8)
    labels[:, 3:12, 4:20] = 1
    labels[1, 20:29, 30:39] = 2
    image = rng.random((2, 30, 40, 2)) * 100
    frames = measure(labels, image).frames
    for t in range(2):
        ref = regionprops_table(
            labels[t], intensity_image=image[t], properties=("label", "intensity_mean", "area")
        )
        got = frames[frames["frame"] == t]
        for ch in range(2):
            np.testing.assert_allclose(got[f"mean_intensity_c{ch}"], ref[f"intensity_mean-{ch}"])
            np.testing.assert_allclose(
                got[f"integrated_intensity_c{ch}"], ref[f"intensity_mean-{ch}"] * ref["area"]
            )
    single = measure(labels, image[..., 0]).frames
    np.testing.assert_allclose(single["mean_intensity"], frames["mean_intensity_c0"])
