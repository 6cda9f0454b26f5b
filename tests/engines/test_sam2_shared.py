"""The first memory-attention self-attention, computed once per frame for all objects."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_sam2v.engines.sam2 import Sam2Engine
from napari_sam2v.engines.sam2 import engine as engine_module
from napari_sam2v.engines.sam2.shared import (
    SharedAttention,
    install_shared_first_attention,
    uninstall_shared_first_attention,
)
from napari_sam2v.prompts import Prompt
from tests.conftest import make_disk_video

pytestmark = pytest.mark.filterwarnings("ignore:model 'random-tiny':UserWarning")

PROMPTS = (
    Prompt(frame=1, object_id=1, points=[[20, 30]]),
    Prompt(frame=1, object_id=2, points=[[67, 39]]),
    Prompt(frame=1, object_id=3, points=[[45, 55]]),
)


@pytest.fixture(scope="module")
def video() -> np.ndarray:
    frames, _ = make_disk_video(
        10,
        (72, 96),
        starts=((30.0, 20.0), (40.0, 70.0), (55.0, 45.0)),
        velocity=((0.5, 2.0), (-0.5, -1.5), (0.0, 1.0)),
        radius=7.0,
    )
    return frames


def _propagate(video: np.ndarray, *, share: bool, monkeypatch) -> tuple[dict, list, Sam2Engine]:
    if not share:
        monkeypatch.setattr(engine_module, "install_shared_first_attention", lambda _m: None)
    engine = Sam2Engine(model="random-tiny", device="cpu")
    features: list[torch.Tensor] = []
    engine._model.memory_attention.register_forward_hook(
        lambda _m, _a, out: features.append(out.clone())
    )
    engine.set_video(video)
    engine.add_prompts(PROMPTS)
    masks = {r.frame: r.masks for r in engine.propagate(direction="both")}
    monkeypatch.undo()
    return masks, features, engine


def test_sharing_is_bit_identical_and_saves_calls(video, monkeypatch) -> None:
    plain_masks, plain_features, plain = _propagate(video, share=False, monkeypatch=monkeypatch)
    masks, features, engine = _propagate(video, share=True, monkeypatch=monkeypatch)
    # every memory-conditioned feature map is the same, bit for bit
    assert len(features) == len(plain_features) > 0
    assert all(torch.equal(a, b) for a, b in zip(features, plain_features, strict=True))
    for frame, by_object in plain_masks.items():
        for oid, mask in by_object.items():
            np.testing.assert_array_equal(masks[frame][oid], mask)
    shared = engine._model.memory_attention.layers[0].self_attn.forward
    assert isinstance(shared, SharedAttention)
    # three objects a frame: the first computes, the other two reuse
    assert shared.hits == 2 * shared.misses > 0
    assert not isinstance(
        plain._model.memory_attention.layers[0].self_attn.forward, SharedAttention
    )
    engine.close()
    plain.close()


def test_a_different_input_is_computed_and_uninstall_restores() -> None:
    engine = Sam2Engine(model="random-tiny", device="cpu")
    model = engine._model
    module = model.memory_attention.layers[0].self_attn
    shared = module.forward
    assert isinstance(shared, SharedAttention)
    assert install_shared_first_attention(model) is shared  # idempotent
    n = 64
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, n, module.hidden_size, generator=generator)
    cos = torch.randn(n, module.head_dim, generator=generator)
    sin = torch.randn(n, module.head_dim, generator=generator)

    def attend(query, key=None, value=None):
        key = query if key is None else key
        value = query if value is None else value
        with torch.inference_mode():
            return module(query=query, key=key, value=value, position_embeddings=(cos, sin))[0]

    first = attend(x)
    y = x.clone()  # equal values, another tensor: served from the cache
    assert torch.equal(attend(y), first)
    assert (shared.hits, shared.misses) == (1, 1)
    attend(x.clone(), key=x, value=x)  # not a self-attention call: computed
    other = attend(x + 1e-3)  # another input: computed
    assert (shared.hits, shared.misses) == (1, 3)
    assert not torch.equal(other, first)
    uninstall_shared_first_attention(model)
    assert "forward" not in module.__dict__  # transformers' forward again
    engine.close()
