"""The shared engine contract: every engine (classic, SAM 2 with random-tiny) passes it.

These tests check behaviour that does not depend on the quality of the model
(random weights give arbitrary masks): result structure, visiting order, prompt
validation, object management, cancellation and refinement semantics.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_sam2v.engines import Direction, Engine, EngineInfo, FrameResult, create_engine
from napari_sam2v.errors import EngineError, InputError, PromptError
from napari_sam2v.prompts import Prompt

ENGINES = {
    "classic": lambda: create_engine("classic"),
    "sam2-random-tiny": lambda: create_engine("sam2", model="random-tiny", device="cpu"),
}


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest, disk_video) -> Engine:
    eng = ENGINES[request.param]()
    frames, _ = disk_video
    eng.set_video(frames)
    yield eng
    eng.close()


def click(frame: int, oid: int, xy: tuple[float, float], label: int = 1) -> Prompt:
    return Prompt(frame=frame, object_id=oid, points=[list(xy)], labels=[label])


def check_result(result: FrameResult, engine: Engine, ids: list[int]) -> None:
    assert isinstance(result, FrameResult)
    assert sorted(result.masks) == ids
    assert sorted(result.scores) == ids
    for mask in result.masks.values():
        assert mask.shape == engine.frame_shape
        assert mask.dtype == bool


def test_video_properties(engine: Engine) -> None:
    assert engine.n_frames == 12
    assert engine.frame_shape == (96, 128)
    assert engine.object_ids == []
    assert isinstance(engine.info, EngineInfo)
    assert engine.info.engine == engine.name


def test_click_returns_mask_of_that_frame(engine: Engine) -> None:
    result = engine.add_prompt(click(3, 1, (39, 30)))
    assert result.frame == 3
    check_result(result, engine, [1])
    assert engine.object_ids == [1]


def test_forward_backward_both_visit_order(engine: Engine) -> None:
    engine.add_prompt(click(4, 1, (42, 30)))
    fwd = [r.frame for r in engine.propagate(direction="forward")]
    assert fwd == list(range(4, 12))
    bwd = [r.frame for r in engine.propagate(direction=Direction.BACKWARD)]
    assert bwd == list(range(4, -1, -1))
    both = [r.frame for r in engine.propagate(direction="both")]
    assert both == list(range(4, 12)) + list(range(3, -1, -1))


def test_frame_range_and_start(engine: Engine) -> None:
    engine.add_prompt(click(2, 1, (36, 30)))
    frames = [r.frame for r in engine.propagate(start=2, frame_range=(1, 6), direction="both")]
    assert frames == [2, 3, 4, 5, 6, 1]
    with pytest.raises(EngineError):
        list(engine.propagate(start=9, frame_range=(0, 5)))


def test_multi_object_results_every_frame(engine: Engine) -> None:
    engine.add_prompt(click(0, 1, (30, 30)))
    engine.add_prompt(Prompt(frame=0, object_id=2, box=[78, 58, 102, 82]))
    results = list(engine.propagate())
    assert [r.frame for r in results] == list(range(12))
    for r in results:
        check_result(r, engine, [1, 2])


def test_cancel_stops_between_frames(engine: Engine) -> None:
    engine.add_prompt(click(0, 1, (30, 30)))
    cancel = threading.Event()
    seen = []
    for r in engine.propagate(cancel=cancel):
        seen.append(r.frame)
        if len(seen) == 3:
            cancel.set()
    assert seen == [0, 1, 2]
    gen = engine.propagate()
    assert next(gen).frame == 0
    gen.close()  # closing the generator must not raise
    # the engine is still usable after a cancel
    assert [r.frame for r in engine.propagate(start=5, frame_range=(5, 7))] == [5, 6, 7]


def test_refine_then_repropagate_from_refined_frame(engine: Engine) -> None:
    engine.add_prompt(click(0, 1, (30, 30)))
    list(engine.propagate())
    refined = engine.add_prompt(
        Prompt(frame=6, object_id=1, points=[[48, 30], [5, 5]], labels=[1, 0])
    )
    assert refined.frame == 6
    check_result(refined, engine, [1])
    frames = [r.frame for r in engine.propagate(start=6)]
    assert frames == list(range(6, 12))


def test_add_object_after_propagation(engine: Engine) -> None:
    engine.add_prompt(click(0, 1, (30, 30)))
    list(engine.propagate())
    engine.add_prompt(click(5, 2, (80, 70)))
    assert engine.object_ids == [1, 2]
    for r in engine.propagate(start=5):
        check_result(r, engine, [1, 2])


def test_remove_object_and_unknown_id(engine: Engine) -> None:
    engine.add_prompt(click(0, 1, (30, 30)))
    engine.add_prompt(click(0, 2, (90, 70)))
    engine.remove_object(2)
    assert engine.object_ids == [1]
    check_result(next(engine.propagate()), engine, [1])
    with pytest.raises(EngineError, match="unknown object"):
        engine.remove_object(7)


def test_clear_frame_removes_prompts(engine: Engine) -> None:
    engine.add_prompt(click(0, 1, (30, 30)))
    engine.add_prompt(click(3, 2, (84, 70)))
    engine.clear_frame(3)
    assert engine.object_ids == [1]
    engine.clear_frame(0, object_id=1)
    assert engine.object_ids == []
    with pytest.raises(EngineError, match="add a prompt"):
        list(engine.propagate())


def test_reset_keeps_video(engine: Engine) -> None:
    engine.add_prompt(click(0, 1, (30, 30)))
    engine.reset()
    assert engine.object_ids == []
    assert engine.n_frames == 12


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        (click(0, 1, (500, 30)), "outside"),
        (click(0, 1, (-1, 30)), "outside"),
        (click(12, 1, (30, 30)), "beyond"),
        (Prompt(frame=0, object_id=1, box=[10, 10, 300, 40]), "outside"),
        (Prompt(frame=0, object_id=1, mask=np.ones((5, 5), bool)), "shape"),
    ],
)
def test_bad_prompts_are_clear_errors(engine: Engine, prompt: Prompt, message: str) -> None:
    with pytest.raises(PromptError, match=message):
        engine.add_prompt(prompt)
    assert engine.object_ids == []


def test_empty_prompt_rejected() -> None:
    with pytest.raises(PromptError, match="empty"):
        Prompt(frame=0, object_id=1)
    with pytest.raises(PromptError, match="empty"):
        Prompt(frame=0, object_id=1, points=np.zeros((0, 2)))


def test_mask_prompt(engine: Engine, disk_video) -> None:
    _, labels = disk_video
    result = engine.add_prompt(Prompt(frame=2, object_id=1, mask=labels[2] == 1))
    check_result(result, engine, [1])


def test_nan_frame_is_a_clear_error(disk_video) -> None:
    frames = disk_video[0].astype(np.float32)
    frames[5, 10, 10] = np.nan
    for name, make in ENGINES.items():
        eng = make()
        eng.set_video(frames)
        with pytest.raises(InputError, match="NaN"):
            eng.add_prompt(click(5, 1, (30, 30)))
        eng.close(), name


def test_errors_without_video_and_bad_engine() -> None:
    for make in ENGINES.values():
        eng = make()
        with pytest.raises(EngineError, match="set_video"):
            eng.add_prompt(click(0, 1, (3, 3)))
        eng.close()
    with pytest.raises(EngineError, match="unknown engine"):
        create_engine("deeplab")


def test_mismatched_frame_shapes_rejected() -> None:
    class Ragged:
        shape = (3, 64, 64)
        dtype = np.dtype(np.uint8)

        def __getitem__(self, i: int) -> np.ndarray:
            return np.zeros((64, 64) if i != 1 else (32, 64), np.uint8)

    for make in ENGINES.values():
        eng = make()
        eng.set_video(Ragged())
        with pytest.raises(InputError, match="same size"):
            eng.add_prompt(click(1, 1, (3, 3)))
        eng.close()
