"""The accuracy harness: metrics, prompt generation and the classic engine on real data."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from benchmarks.accuracy import (
    evaluate,
    first_frame_prompts,
    main,
    overlap_following,
    per_frame_agreement,
)
from benchmarks.datasets import T98G_DIR, load_t98g
from benchmarks.metrics import boundary_f_measure, boundary_tolerance, jaccard

from napari_sam2v.engines import Direction, Engine, EngineInfo, FrameResult, ObjectScore
from napari_sam2v.engines.classic import ClassicEngine
from napari_sam2v.prompts import Prompt

HAS_T98G = (T98G_DIR / "images" / "t98g_phase_T37.tif").exists()


def disk(shape: tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_jaccard_and_boundary_f() -> None:
    a = disk((64, 64), 32, 32, 10)
    empty = np.zeros_like(a)
    assert jaccard(a, a) == 1.0
    assert jaccard(empty, empty) == 1.0
    assert jaccard(a, empty) == 0.0
    assert jaccard(a, disk((64, 64), 32, 32, 5)) == pytest.approx(
        disk((64, 64), 32, 32, 5).sum() / a.sum()
    )
    assert boundary_f_measure(a, a, tolerance=1) == 1.0
    assert boundary_f_measure(empty, empty, tolerance=1) == 1.0
    assert boundary_f_measure(a, empty, tolerance=1) == 0.0
    shifted = np.roll(a, 2, axis=1)
    assert boundary_f_measure(a, shifted, tolerance=2) == 1.0
    assert boundary_f_measure(a, shifted, tolerance=0) < 0.5
    far = disk((64, 64), 10, 10, 5)
    assert boundary_f_measure(a, far, tolerance=2) == 0.0
    assert boundary_tolerance((480, 854)) == 8  # DAVIS 480p: 0.008 x 980 px


def test_prompts_at_deepest_point_on_first_frame() -> None:
    labels = np.zeros((4, 40, 60), np.uint8)
    labels[0, 5:15, 5:35] = 1  # 10 x 30 bar: deepest row 9 or 10
    labels[2:, 20:31, 40:51] = 2  # appears on frame 2
    prompts = first_frame_prompts(labels, box=True)
    assert [(p.object_id, p.frame) for p in prompts] == [(1, 0), (2, 2)]
    x, y = prompts[1].points[0]
    assert (x, y) == (45.0, 25.0)
    assert labels[0, int(prompts[0].points[0][1]), int(prompts[0].points[0][0])] == 1
    assert prompts[1].box.tolist() == [40, 20, 51, 31]
    assert len(first_frame_prompts(labels, max_objects=1)) == 1
    with pytest.raises(ValueError, match="does not occur"):
        first_frame_prompts(labels, ids=[7])


def test_mask_prompts_are_the_true_first_frame_masks() -> None:
    labels = np.zeros((3, 30, 40), np.uint8)
    labels[0, 2:9, 3:12] = 1
    labels[1:, 15:25, 20:33] = 2
    prompts = first_frame_prompts(labels, mask=True)
    assert [(p.object_id, p.frame) for p in prompts] == [(1, 0), (2, 1)]
    assert prompts[0].points is None and prompts[0].box is None
    assert np.array_equal(prompts[0].mask, labels[0] == 1)
    assert np.array_equal(prompts[1].mask, labels[1] == 2)
    with pytest.raises(ValueError, match="box"):
        first_frame_prompts(labels, mask=True, box=True)


def test_overlap_following_scores_the_truth_s_own_id_changes() -> None:
    shape = (40, 60)
    truth = np.zeros((6, *shape), np.uint8)
    for t in range(6):
        truth[t][disk(shape, 12, 10 + 2 * t, 6)] = 1
        truth[t][disk(shape, 30, 45, 5)] = 3
    prompts = first_frame_prompts(truth)
    assert overlap_following(truth, prompts) == {1: 1.0, 3: 1.0}
    # The reference renames object 1 on frames 3-5 (as a pipeline's tracker may):
    # a perfect segmentation that follows it by overlap keeps the object, so it
    # scores 0 against id 1 on frames 3, 4 and 5.
    renamed = truth.copy()
    renamed[3:][renamed[3:] == 1] = 2
    assert overlap_following(renamed, prompts) == {1: 0.5, 3: 1.0}
    # A dropout: object 3 is missing on frames 2-3 and comes back in place. The
    # follower reports it absent (J = 1 against an empty truth), then finds it again.
    dropped = truth.copy()
    dropped[2:4][dropped[2:4] == 3] = 0
    assert overlap_following(dropped, prompts)[3] == 1.0
    # Reappearing elsewhere is not found again: frames 4-5 score 0.
    moved = dropped.copy()
    moved[4:][moved[4:] == 3] = 0
    moved[4:][:, 30:36, 2:8] = 3
    assert overlap_following(moved, prompts)[3] == pytest.approx(4 / 6)


class ReplayEngine(Engine):
    """Returns given label images as masks: lets the test control identity switches."""

    name = "replay"

    def __init__(self, predicted: np.ndarray) -> None:
        super().__init__()
        self.predicted = predicted
        self.ids: list[int] = []

    def _on_video_set(self) -> None:
        self.ids = []

    @property
    def object_ids(self) -> list[int]:
        return sorted(self.ids)

    def add_prompt(self, prompt: Prompt) -> FrameResult:
        self.check_prompt(prompt)
        self.ids.append(prompt.object_id)
        return self._result(prompt.frame)

    def _result(self, frame: int) -> FrameResult:
        masks = {oid: self.predicted[frame] == oid for oid in self.object_ids}
        return FrameResult(frame, masks, {oid: ObjectScore(1.0) for oid in masks})

    def remove_object(self, object_id: int) -> None:
        self.ids.remove(object_id)

    def clear_frame(self, frame: int, object_id: int | None = None) -> None:
        self.ids.clear()

    def propagate(
        self,
        *,
        start: int | None = None,
        direction: str | Direction = Direction.FORWARD,
        frame_range: tuple[int, int] | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[FrameResult]:
        return (self._result(f) for f in range(start or 0, self.n_frames))

    def reset(self) -> None:
        self.ids.clear()

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(engine=self.name)


def test_identity_switches_are_counted() -> None:
    shape = (48, 64)
    truth = np.zeros((6, *shape), np.uint8)
    for t in range(6):
        truth[t][disk(shape, 20, 15 + t, 6)] = 1
        truth[t][disk(shape, 20, 45 - t, 6)] = 2
    predicted = truth.copy()
    predicted[3:] = np.where(truth[3:] == 1, 2, np.where(truth[3:] == 2, 1, 0))  # swap
    frames = truth.astype(np.float32)
    report = evaluate(ReplayEngine(predicted), frames, truth, first_frame_prompts(truth))
    assert report.id_switches == 2
    assert [o.id_switches for o in report.objects] == [1, 1]
    assert report.objects[0].iou[:3] == [1.0, 1.0, 1.0]
    assert report.objects[0].iou[3:] == [0.0, 0.0, 0.0]
    assert report.j_mean == pytest.approx(0.5)


def test_per_frame_agreement_clicks_every_frame_afresh() -> None:
    shape = (48, 64)
    truth = np.zeros((5, *shape), np.uint8)
    for t in range(5):
        truth[t][disk(shape, 20, 15 + t, 6)] = 1
        if t != 2:
            truth[t][disk(shape, 20, 45 - t, 6)] = 2  # absent on frame 2
    truth[3:][:, 36:44, 28:36] = 3  # appears on frame 3
    predicted = truth.copy()
    predicted[4][predicted[4] == 1] = 0  # the engine misses objects 1 and 3 on frame 4
    predicted[4][predicted[4] == 3] = 0
    engine = ReplayEngine(predicted)
    scores = per_frame_agreement(engine, truth.astype(np.float32), truth, [1, 2, 3])
    # Object 3 is scored on its two frames only, as evaluate() would score it.
    assert scores == {1: pytest.approx(0.8), 2: 1.0, 3: pytest.approx(0.5)}
    # Only the objects present on the last frame were prompted there: nothing
    # carried over from the earlier frames.
    assert engine.object_ids == [1, 2, 3]
    with pytest.raises(ValueError, match="do not occur"):
        per_frame_agreement(engine, truth.astype(np.float32), truth, [9])


def test_classic_on_disks(disk_video) -> None:
    frames, labels = disk_video
    report = evaluate("classic", frames, labels, first_frame_prompts(labels), name="disks")
    assert report.j_mean > 0.9
    assert report.f_mean > 0.95
    assert report.id_switches == 0
    data = report.to_dict()
    assert data["name"] == "disks" and data["engine"] == "classic"
    assert len(data["objects"]) == 2 and len(data["objects"][0]["iou"]) == 12
    assert report.table().splitlines()[-1].split()[0] == "mean"


def test_classic_on_reef_sample() -> None:
    samples = pytest.importorskip("napari_sam2v.samples")
    try:
        sample = samples.load_reef()
    except (OSError, ValueError) as exc:  # sample files not generated in this checkout
        pytest.skip(f"reef sample unavailable: {exc}")
    labels = np.asarray(sample.labels)
    report = evaluate("classic", np.asarray(sample.frames), labels, first_frame_prompts(labels))
    # Measured 0.890 (J) and 0.968 (F) on the 48-frame clip; the goal is J >= 0.85.
    assert report.j_mean >= 0.85
    assert report.f_mean >= 0.9
    assert report.id_switches == 0


@pytest.mark.skipif(not HAS_T98G, reason="T98G data folder not present")
def test_harness_cli_on_t98g_crop(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    status = main(
        ["--sample", "t98g", "--crop", "300:556,300:556", "--frames", "10", "--out", str(tmp_path)]
    )
    assert status == 0
    data = json.loads((tmp_path / "accuracy_t98g_classic.json").read_text())
    assert data["shape"] == [10, 256, 256]
    assert data["boundary_tolerance_px"] == 3
    assert data["prompts"]["count"] == len(data["objects"]) > 5
    # Agreement with the source pipeline's masks, measured 0.472 mean J on this crop
    # (0.478 with the texture feature, 0.419 before its geodesic reach limit): these
    # 12 cells hinge on a few dividing or merging ones, so the floor has some room.
    assert data["J_mean"] > 0.42
    assert data["prompts"]["kind"] == "points"
    # A perfect segmentation linked by overlap scores higher than the engine and at
    # most 1; it is computed from the reference alone.
    assert data["J_mean"] < data["overlap_following_J_mean"] <= 1.0
    assert set(data["overlap_following_J"]) == {str(o["object_id"]) for o in data["objects"]}
    assert "per_frame_click_J_mean" not in data
    assert "mean" in capsys.readouterr().out


@pytest.mark.skipif(not HAS_T98G, reason="T98G data folder not present")
def test_harness_cli_mask_prompts_and_per_frame(tmp_path: Path) -> None:
    crop = ["--sample", "t98g", "--crop", "300:556,300:556", "--frames", "4"]
    assert main([*crop, "--mask", "--per-frame", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "accuracy_t98g_classic.json").read_text())
    assert data["prompts"]["kind"] == "mask"
    # A mask prompt is kept exactly: every object scores 1 on its first frame.
    assert all(o["iou"][0] == 1.0 for o in data["objects"])
    assert 0.0 < data["per_frame_click_J_mean"] < 1.0
    with pytest.raises(SystemExit):
        main([*crop, "--mask", "--box", "--out", str(tmp_path)])


@pytest.mark.skipif(not HAS_T98G, reason="T98G data folder not present")
def test_classic_seeds_every_t98g_cell_of_frame_0() -> None:
    """One click per cell on the full first frame: the phase watershed's own quality."""
    frames, labels = load_t98g(n_frames=1)
    prompts = first_frame_prompts(labels)
    engine = ClassicEngine()
    engine.set_video(frames)
    result = engine.add_prompts(prompts)[0]
    ious = [jaccard(result.masks[p.object_id], labels[0] == p.object_id) for p in prompts]
    features = [engine._seeds[p.object_id][0].appearance.feature for p in prompts]
    assert len(prompts) == 71
    # Measured: 64 of 71 cells segmented as "phase", mean IoU 0.57 (texture: 0.42).
    assert features.count("phase") > 0.8 * len(prompts)
    assert float(np.mean(ious)) > 0.52


@pytest.mark.skipif(not HAS_T98G, reason="T98G data folder not present")
def test_load_t98g_crop_and_bad_crop() -> None:
    frames, labels = load_t98g(n_frames=2, crop="0:64,10:74")
    assert frames.shape == labels.shape == (2, 64, 64)
    assert frames.dtype == np.uint16
    single, single_labels = load_t98g(n_frames=1, crop="0:32,0:48")  # one page keeps its t axis
    assert single.shape == single_labels.shape == (1, 32, 48)
    with pytest.raises(SystemExit, match="y0:y1,x0:x1"):
        load_t98g(n_frames=1, crop="0-64")
