"""Streaming and eviction do not change SAM 2 results (random-tiny vs transformers' session).

Random weights make the masks barely depend on memory, so the memory-conditioned
features (the output of memory attention, i.e. the mask decoder's input) are
compared too, and a deliberate perturbation of the memory must break that match.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_sam2v.engines.sam2 import Sam2Engine
from napari_sam2v.engines.sam2.runtime import (
    cpu_threads,
    points_to_model,
    preprocess_frame,
    upsample_logits,
)
from napari_sam2v.prompts import Prompt
from tests.conftest import make_disk_video

pytestmark = pytest.mark.filterwarnings("ignore:model 'random-tiny':UserWarning")

N_FRAMES = 26
START = 3


@pytest.fixture(scope="module")
def video() -> np.ndarray:
    frames, _ = make_disk_video(
        N_FRAMES, (72, 96), starts=((30.0, 20.0),), velocity=((0.5, 2.0),), radius=8.0
    )
    return frames


def _engine(video: np.ndarray) -> Sam2Engine:
    engine = Sam2Engine(model="random-tiny", device="cpu", precision="float32")
    engine.set_video(video)
    return engine


def _capture(model: torch.nn.Module) -> tuple[list[torch.Tensor], object]:
    store: list[torch.Tensor] = []
    handle = model.memory_attention.register_forward_hook(
        lambda _m, _a, out: store.append(out.detach().clone())
    )
    return store, handle


def _reference_run(engine: Sam2Engine, video: np.ndarray, prompt: Prompt):
    """transformers' own session, all frames preprocessed up front, no eviction."""
    from transformers import Sam2VideoModel
    from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession

    ours = engine._model
    reference = Sam2VideoModel(ours.config).eval()
    reference.load_state_dict(ours.state_dict())
    size = ours.config.image_size
    pixels = torch.stack(
        [
            preprocess_frame(engine.frames.rgb_frame(i), size, torch.device("cpu"))
            for i in range(N_FRAMES)
        ]
    )
    session = Sam2VideoInferenceSession(
        video=pixels, video_height=video.shape[1], video_width=video.shape[2], dtype=torch.float32
    )
    obj_idx = session.obj_id_to_idx(prompt.object_id)
    session.add_point_inputs(
        obj_idx,
        prompt.frame,
        points_to_model(prompt, engine.frame_shape, size, torch.device("cpu")),
    )
    session.obj_with_new_inputs = [prompt.object_id]
    features, handle = _capture(reference)
    masks: dict[int, np.ndarray] = {}
    scores: dict[int, float] = {}
    with torch.inference_mode(), cpu_threads(1):
        reference(session, frame_idx=prompt.frame)
        for reverse in (False, True):
            for out in reference.propagate_in_video_iterator(
                session, start_frame_idx=prompt.frame, reverse=reverse
            ):
                masks[out.frame_idx] = upsample_logits(out.pred_masks, size, engine.frame_shape)[0]
                scores[out.frame_idx] = float(out.object_score_logits.reshape(-1)[0])
    handle.remove()
    return masks, scores, features


def _engine_run(engine: Sam2Engine, prompt: Prompt, perturb: bool = False):
    features, handle = _capture(engine._model)
    hooks = [handle]
    if perturb:

        def scale_memory(_module, args, kwargs):
            kwargs = dict(kwargs)
            kwargs["memory"] = kwargs["memory"] * 1.05
            return args, kwargs

        hooks.append(
            engine._model.memory_attention.register_forward_pre_hook(scale_memory, with_kwargs=True)
        )
    engine.add_prompt(prompt)
    results = {r.frame: r for r in engine.propagate(direction="both")}
    for hook in hooks:
        hook.remove()
    return results, features


def _max_feature_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    assert len(a) == len(b)
    return max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True))


def test_streamed_evicting_run_equals_transformers_session(video) -> None:
    prompt = Prompt(frame=START, object_id=1, points=[[26, 31]])
    engine = _engine(video)
    results, features = _engine_run(engine, prompt)
    ref_masks, ref_scores, ref_features = _reference_run(engine, video, prompt)

    # eviction happened: most records are compact, and frames were never stored
    outputs = engine._session.output_dict_per_obj[0]["non_cond_frame_outputs"]
    full = [f for f, out in outputs.items() if "maskmem_features" in out]
    assert len(outputs) == N_FRAMES - 1
    assert len(full) <= 2 * engine._num_maskmem < len(outputs)
    assert engine._session.processed_frames is None
    assert len(engine._session.cache) <= engine._cache_size

    assert sorted(results) == sorted(ref_masks) == list(range(N_FRAMES))
    for frame, result in results.items():
        assert np.array_equal(result.masks[1], ref_masks[frame]), frame
        assert result.scores[1].object_score_logit == pytest.approx(ref_scores[frame], abs=1e-4)
    # the memory-conditioned features, frame by frame, in the same order
    assert len(features) == len(ref_features) == N_FRAMES - 1
    assert _max_feature_diff(features, ref_features) < 1e-5
    engine.close()


def test_memory_perturbation_breaks_the_feature_match(video) -> None:
    prompt = Prompt(frame=START, object_id=1, points=[[26, 31]])
    engine = _engine(video)
    _, features = _engine_run(engine, prompt, perturb=True)
    _, _, ref_features = _reference_run(engine, video, prompt)
    assert _max_feature_diff(features, ref_features) > 1e-3
    engine.close()


def test_memory_stays_bounded_as_the_video_grows() -> None:
    counts = {}
    for n in (20, 60):
        frames, _ = make_disk_video(n, (64, 64), starts=((30.0, 20.0),), velocity=((0.0, 0.5),))
        engine = _engine(frames)
        engine.add_prompt(Prompt(frame=0, object_id=1, points=[[20, 30]]))
        for _ in engine.propagate():
            pass
        outputs = engine._session.output_dict_per_obj[0]["non_cond_frame_outputs"]
        counts[n] = sum("maskmem_features" in out for out in outputs.values())
        assert all("high_res_masks" not in out for out in outputs.values())
        engine.close()
    assert counts[20] == counts[60]
