"""SAM 2 engine behaviour beyond the shared contract (random-tiny, CPU)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from napari_sam2v.engines.sam2 import NO_OBJECT_LOGIT, Sam2Engine
from napari_sam2v.engines.sam2.runtime import mask_to_model, points_to_model
from napari_sam2v.errors import EngineError, InputError, PromptError
from napari_sam2v.prompts import Prompt

pytestmark = pytest.mark.filterwarnings("ignore:model 'random-tiny':UserWarning")


def make(frames=None, **options) -> Sam2Engine:
    engine = Sam2Engine(model="random-tiny", device="cpu", **options)
    if frames is not None:
        engine.set_video(frames)
    return engine


def click(frame: int, oid: int, x: float, y: float) -> Prompt:
    return Prompt(frame=frame, object_id=oid, points=[[x, y]])


def test_random_tiny_warns_and_is_flagged(disk_video) -> None:
    with pytest.warns(UserWarning, match="random weights"):
        engine = Sam2Engine(model="random-tiny", device="cpu")
    info = engine.info
    assert info.random_weights and info.model_hash == "random-tiny-seed0"
    assert info.settings["image_size"] == 128
    engine.close()
    with pytest.raises(EngineError, match="closed"):
        engine.set_video(disk_video[0])


def test_multi_object_run_equals_single_object_runs(disk_video) -> None:
    frames, _ = disk_video
    prompts = [click(0, 1, 30, 30), Prompt(frame=0, object_id=2, box=[78, 58, 102, 82])]
    both = make(frames, precision="float32")
    both.add_prompts(prompts)
    joint = list(both.propagate())
    for prompt in prompts:
        single = make(frames, precision="float32")
        single.add_prompt(prompt)
        alone = list(single.propagate())
        for a, b in zip(joint, alone, strict=True):
            oid = prompt.object_id
            assert a.frame == b.frame
            assert np.array_equal(a.masks[oid], b.masks[oid]), (oid, a.frame)
            assert a.scores[oid].object_score_logit == pytest.approx(
                b.scores[oid].object_score_logit, abs=1e-4
            )
            assert a.scores[oid].iou == pytest.approx(b.scores[oid].iou, abs=1e-4)
        single.close()
    both.close()


def test_scores_are_reported(disk_video) -> None:
    engine = make(disk_video[0])
    first = engine.add_prompt(click(0, 1, 30, 30))
    assert np.isfinite(first.scores[1].object_score_logit)
    assert np.isfinite(first.scores[1].iou)
    for result in engine.propagate():
        assert np.isfinite(result.scores[1].object_score_logit)
        assert np.isfinite(result.scores[1].iou)
    # a mask prompt scores as certain, like the official predictor
    _, labels = disk_video
    masked = engine.add_prompt(Prompt(frame=4, object_id=2, mask=labels[4] == 2))
    assert masked.scores[2].iou == 1.0
    assert masked.masks[2].sum() > 0
    engine.close()


def test_click_on_cached_frame_is_decoder_only(disk_video) -> None:
    engine = make(disk_video[0], embedding_cache_size=2)
    calls = []
    engine._model.vision_encoder.register_forward_hook(lambda *_: calls.append(1))
    for frame in (0, 1, 2):
        engine.prefetch(frame)
    assert engine._session.cache.frames == [1, 2]  # least recently used evicted
    assert len(calls) == 3
    engine.add_prompt(click(2, 1, 30, 30))
    engine.add_prompt(Prompt(frame=2, object_id=1, points=[[30, 30], [5, 5]], labels=[1, 0]))
    assert len(calls) == 3  # both clicks reused the cached features
    engine.add_prompt(click(0, 2, 30, 30))
    assert len(calls) == 4
    with pytest.raises(PromptError, match="beyond"):
        engine.prefetch(12)
    engine.close()


def test_prefetch_from_a_background_thread_while_clicking(disk_video) -> None:
    frames, _ = disk_video
    sequential = make(frames)
    expected = [sequential.add_prompt(click(f, 1, 30 + 3 * f, 30)) for f in range(6)]
    sequential.close()

    engine = make(frames, embedding_cache_size=3)
    errors: list[BaseException] = []
    stop = threading.Event()

    def prefetch_loop() -> None:
        try:
            while not stop.is_set():
                for frame in range(12):
                    engine.prefetch(frame)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=prefetch_loop)
    worker.start()
    try:
        got = [engine.add_prompt(click(f, 1, 30 + 3 * f, 30)) for f in range(6)]
    finally:
        stop.set()
        worker.join(timeout=60)
    assert not worker.is_alive() and not errors
    for a, b in zip(got, expected, strict=True):
        assert np.array_equal(a.masks[1], b.masks[1])
    engine.close()


class CountingFrames:
    """A lazy array-like that records which frames are read and refuses bulk reads."""

    def __init__(self, data: np.ndarray) -> None:
        self._data = data
        self.shape = data.shape
        self.dtype = data.dtype
        self.reads: list[int] = []

    def __getitem__(self, index: int) -> np.ndarray:
        if not isinstance(index, (int, np.integer)):
            raise TypeError("bulk read attempted")
        self.reads.append(int(index))
        return self._data[index]

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole video was materialised")


def test_frames_are_read_lazily(disk_video) -> None:
    frames = CountingFrames(disk_video[0])
    engine = make(frames)
    reads_after_setup = len(frames.reads)  # percentile sampling only
    assert reads_after_setup <= 16
    engine.add_prompt(click(5, 1, 40, 30))
    assert frames.reads[reads_after_setup:] == [5]
    results = list(engine.propagate(start=5, frame_range=(5, 8)))
    assert [r.frame for r in results] == [5, 6, 7, 8]
    assert sorted(set(frames.reads[reads_after_setup:])) == [5, 6, 7, 8]
    engine.close()


def test_propagation_trims_the_heap_every_few_frames(
    disk_video, monkeypatch: pytest.MonkeyPatch
) -> None:
    from napari_sam2v.engines import heap

    trims: list[int] = []
    monkeypatch.setattr(heap, "trim_heap", lambda: trims.append(1) or True)
    monkeypatch.setattr(heap, "resident_mib", lambda: 1000.0)  # no growth: count only
    frames = np.concatenate([disk_video[0]] * 3)  # 36 frames
    engine = make(frames)
    engine.add_prompt(click(0, 1, 30, 30))
    assert len(list(engine.propagate())) == 36
    assert len(trims) == 36 // heap.HeapTrimmer().every
    engine.close()


@pytest.mark.parametrize(
    ("frames", "channel"),
    [
        (np.random.default_rng(0).integers(0, 255, (4, 50, 77, 3), dtype=np.uint8), None),
        (np.random.default_rng(1).integers(0, 4000, (4, 61, 40, 5), dtype=np.uint16), 3),
        (np.random.default_rng(2).random((4, 33, 129), dtype=np.float32) * 7.0, None),
    ],
    ids=["rgb-odd-size", "16bit-multichannel", "float-gray"],
)
def test_inputs_of_any_kind_and_size(frames: np.ndarray, channel: int | None) -> None:
    engine = Sam2Engine(model="random-tiny", device="cpu")
    engine.set_video(frames, channel=channel)
    height, width = frames.shape[1:3]
    result = engine.add_prompt(Prompt(frame=1, object_id=1, box=[2, 2, width - 3, height - 3]))
    assert result.masks[1].shape == (height, width)
    for r in engine.propagate(direction="both"):
        assert r.masks[1].shape == (height, width) and r.masks[1].dtype == bool
    engine.close()


def test_coordinate_conversion() -> None:
    prompt = Prompt(
        frame=0, object_id=1, points=[[10, 20], [0, 0]], labels=[1, 0], box=[4, 8, 40, 60]
    )
    inputs = points_to_model(prompt, (100, 50), 128, torch.device("cpu"))
    coords, labels = inputs["point_coords"], inputs["point_labels"]
    assert coords.shape == (1, 1, 4, 2) and coords.dtype == torch.float32
    sx, sy = 128 / 50, 128 / 100
    expected = [[4 * sx, 8 * sy], [40 * sx, 60 * sy], [10 * sx, 20 * sy], [0, 0]]
    assert torch.allclose(coords[0, 0], torch.tensor(expected, dtype=torch.float32))
    assert labels[0, 0].tolist() == [2, 3, 1, 0] and labels.dtype == torch.int32
    mask = np.zeros((100, 50), bool)
    mask[:50] = True
    resized = mask_to_model(mask, 128, torch.device("cpu"))
    assert resized.shape == (1, 1, 128, 128) and resized.dtype == torch.float32
    assert resized[0, 0, :60].all() and not resized[0, 0, 70:].any()


def test_refined_frame_is_kept_and_repropagation_replaces_downstream(disk_video) -> None:
    engine = make(disk_video[0])
    engine.add_prompt(click(0, 1, 30, 30))
    before = {r.frame: r for r in engine.propagate()}
    refined = engine.add_prompt(
        Prompt(frame=6, object_id=1, points=[[48, 30], [5, 5]], labels=[1, 0])
    )
    assert 6 in engine._session.output_dict_per_obj[0]["cond_frame_outputs"]
    again = {r.frame: r for r in engine.propagate(start=6)}
    assert sorted(again) == list(range(6, 12))
    assert np.array_equal(again[6].masks[1], refined.masks[1])  # the correction is kept
    assert set(before) - set(again) == set(range(6))  # upstream frames are not revisited
    engine.close()


def test_other_objects_on_a_clicked_frame(disk_video) -> None:
    engine = make(disk_video[0])
    engine.add_prompt(click(0, 1, 30, 30))
    tracked = {r.frame: r for r in engine.propagate()}
    result = engine.add_prompt(click(10, 2, 80, 70))
    # object 1 was tracked on frame 10: its (compacted) mask is reported, not erased
    assert np.array_equal(result.masks[1], tracked[10].masks[1])
    fresh = engine.add_prompt(click(0, 3, 90, 70))
    assert fresh.scores[2].object_score_logit == NO_OBJECT_LOGIT  # never seen on frame 0
    assert not fresh.masks[2].any()
    engine.close()


def test_clear_errors_and_no_state_change_on_failure(disk_video) -> None:
    frames = disk_video[0].astype(np.float32)
    frames[5, 3, 3] = np.nan
    engine = make(frames)
    with pytest.raises(InputError, match="NaN"):
        engine.add_prompt(click(5, 1, 30, 30))
    assert engine.object_ids == [] and engine._session.get_obj_num() == 0
    engine.add_prompt(click(0, 1, 30, 30))
    with pytest.raises(InputError, match="NaN"):
        list(engine.propagate())
    with pytest.raises(PromptError, match="cannot be combined"):
        engine.add_prompt(
            Prompt(frame=1, object_id=2, points=[[3, 3]], mask=np.ones(engine.frame_shape, bool))
        )
    with pytest.raises(EngineError, match="unknown object"):
        engine.clear_frame(0, object_id=9)
    with pytest.raises(EngineError, match="unknown direction"):
        engine.propagate(direction="sideways")
    engine.close()

    blank = make()
    with pytest.raises(EngineError, match="set_video"):
        blank.prefetch(0)
    with pytest.raises(EngineError, match="set_video"):
        list(blank.propagate())
    blank.close()


def test_ragged_frames_rejected() -> None:
    class Ragged:
        shape = (3, 64, 64)
        dtype = np.dtype(np.uint8)

        def __getitem__(self, i: int) -> np.ndarray:
            return np.zeros((64, 64) if i != 1 else (32, 64), np.uint8)

    engine = make(Ragged())
    with pytest.raises(InputError, match="same size"):
        engine.add_prompt(click(1, 1, 3, 3))
    assert engine.object_ids == []
    engine.close()


def test_bfloat16_precision_runs(disk_video) -> None:
    engine = make(disk_video[0], precision="bfloat16")
    result = engine.add_prompt(click(0, 1, 30, 30))
    assert result.masks[1].shape == engine.frame_shape
    assert engine.info.settings["precision"] == "bfloat16"
    engine.close()
