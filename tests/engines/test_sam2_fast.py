"""The CPU fast path (``precision="mixed"``) and ``memory_frames`` of the SAM 2 engine.

Random weights make masks barely depend on the memory, so, as in
``test_sam2_streaming.py``, the memory-conditioned features (the output of memory
attention) are compared too, and a deliberate 5% perturbation of the memory must
move them far more than the fast path does.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_sam2v.engines.sam2 import Sam2Engine
from napari_sam2v.engines.sam2 import fastpath as fastpath_module
from napari_sam2v.engines.sam2.fastpath import (
    bf16_matmul_supported,
    chunked_attention,
    enable_fast_path,
    install_bf16_encoder,
    install_fast_attention,
    uninstall,
)
from napari_sam2v.errors import EngineError
from napari_sam2v.prompts import Prompt
from tests.conftest import make_disk_video

pytestmark = pytest.mark.filterwarnings("ignore:model 'random-tiny':UserWarning")

N_FRAMES = 14
needs_bf16 = pytest.mark.skipif(
    not bf16_matmul_supported(torch.device("cpu")), reason="CPU without native bf16"
)


@pytest.fixture(scope="module")
def video() -> np.ndarray:
    frames, _ = make_disk_video(
        N_FRAMES,
        (72, 96),
        starts=((30.0, 20.0), (40.0, 70.0)),
        velocity=((0.5, 2.0), (-0.5, -1.5)),
        radius=8.0,
    )
    return frames


PROMPTS = (
    Prompt(frame=2, object_id=1, points=[[20, 30]]),
    Prompt(frame=2, object_id=2, points=[[67, 39]]),
)


def _run(video: np.ndarray, *, perturb: bool = False, **options) -> tuple[dict, list]:
    """Propagate both ways; return ``{frame: {id: mask}}`` and memory-attention outputs."""
    engine = Sam2Engine(model="random-tiny", device="cpu", **{"precision": "float32", **options})
    features: list[torch.Tensor] = []
    attention = engine._model.memory_attention
    hooks = [attention.register_forward_hook(lambda _m, _a, o: features.append(o.clone()))]
    if perturb:

        def scale(_m, args, kwargs):
            return args, {**kwargs, "memory": kwargs["memory"] * 1.05}

        hooks.append(attention.register_forward_pre_hook(scale, with_kwargs=True))
    engine.set_video(video)
    engine.add_prompts(PROMPTS)
    masks = {r.frame: r.masks for r in engine.propagate(direction="both")}
    for hook in hooks:
        hook.remove()
    engine.close()
    return masks, features


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def _feature_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    assert len(a) == len(b) > 0
    return max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True))


# -- kernels -------------------------------------------------------------------------
@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_chunked_attention_fp32_equals_sdpa(chunk: int) -> None:
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, n, 16, generator=gen) for n in (50, 90, 90))
    expected = F.scaled_dot_product_attention(q, k, v)
    got = chunked_attention(q, k, v, scaling=16**-0.5, chunk=chunk, dtype=torch.float32)
    assert got.dtype == torch.float32
    assert torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("chunk", [3, 16, 64])
def test_chunked_attention_bf16_equals_unchunked_bf16(chunk: int) -> None:
    """The reused score buffer and in-place softmax change nothing, including the
    shorter last chunk and broadcast leading dimensions."""
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(2, 3, 37, 32, generator=gen)
    k = torch.randn(1, 3, 70, 32, generator=gen)
    v = torch.randn(2, 1, 70, 8, generator=gen)
    got = chunked_attention(q, k, v, scaling=0.2, chunk=chunk)
    scores = torch.matmul((q * 0.2).bfloat16(), k.bfloat16().transpose(-1, -2))
    expected = torch.matmul(torch.softmax(scores, dim=-1), v.bfloat16()).float()
    assert got.shape == (2, 3, 37, 8)
    assert torch.equal(got, expected)


def test_chunked_attention_bf16_is_close_and_not_exact() -> None:
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 1, n, 64, generator=gen) for n in (300, 500, 500))
    expected = F.scaled_dot_product_attention(q, k, v)
    got = chunked_attention(q, k, v, scaling=64**-0.5, chunk=128)
    err = float((got - expected).abs().max())
    assert 0 < err < 2e-2
    with pytest.raises(ValueError, match="chunk"):
        chunked_attention(q, k, v, scaling=1.0, chunk=0)


def test_fast_attention_in_fp32_reproduces_the_model_and_uninstalls(video) -> None:
    """Value reassociation and RoPE handling are exact: fp32 fast path == original."""
    engine = Sam2Engine(model="random-tiny", device="cpu", precision="float32")
    model = engine._model
    gen = torch.Generator().manual_seed(2)
    layer = model.memory_attention.layers[0]
    hidden = layer.cross_attn_image.hidden_size
    n_keys, n_q = 5 * 64 + 8, 64  # random-tiny: 8x8 memory tokens per frame, 8 pointer tokens
    query = torch.randn(1, 1, n_q, hidden, generator=gen)
    memory = torch.randn(1, 1, n_keys, layer.cross_attn_image.kv_in_dim, generator=gen)
    rope = model.memory_attention.rotary_emb(query[:, 0], model.memory_attention.position_ids)

    def call(module):
        with torch.inference_mode():
            return module(
                query=query, key=memory + 0.1, value=memory, position_embeddings=rope,
                num_k_exclude_rope=8,
            )[0]  # fmt: skip

    reference = call(layer.cross_attn_image)
    assert install_fast_attention(model, dtype=torch.float32, chunk=24) > 0
    exact = call(layer.cross_attn_image)
    assert torch.allclose(exact, reference, atol=1e-5)
    uninstall(model)
    install_fast_attention(model)
    approx = call(layer.cross_attn_image)
    assert 0 < float((approx - reference).abs().max()) < 5e-2
    uninstall(model)
    assert torch.equal(call(layer.cross_attn_image), reference)
    assert "forward" not in vars(layer.cross_attn_image)
    engine.close()


def test_bf16_encoder_patches_mlps_only_and_uninstalls() -> None:
    engine = Sam2Engine(model="random-tiny", device="cpu", precision="float32")
    model = engine._model
    blocks = model.vision_encoder.backbone.blocks
    pixels = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        reference = model.get_image_features(pixels).fpn_hidden_states
        assert install_bf16_encoder(model) == len(blocks)
        assert install_bf16_encoder(model) == 0  # idempotent
        fast = model.get_image_features(pixels).fpn_hidden_states
        uninstall(model)
        again = model.get_image_features(pixels).fpn_hidden_states
    assert all(f.dtype == torch.float32 for f in fast)
    assert any(not torch.equal(f, r) for f, r in zip(fast, reference, strict=True))
    assert all(torch.equal(a, r) for a, r in zip(again, reference, strict=True))
    engine.close()


# -- engine ----------------------------------------------------------------------------
@needs_bf16
def test_mixed_precision_agrees_with_float32_on_every_frame(video) -> None:
    ref_masks, ref_features = _run(video)
    fast_masks, fast_features = _run(video, precision="mixed")
    assert sorted(fast_masks) == sorted(ref_masks) == list(range(N_FRAMES))
    for frame in ref_masks:
        for oid in (1, 2):
            assert _iou(fast_masks[frame][oid], ref_masks[frame][oid]) >= 0.99, (frame, oid)
    scale = max(float(f.abs().max()) for f in ref_features)
    assert 0 < _feature_diff(fast_features, ref_features) < 0.01 * scale


@needs_bf16
def test_fast_memory_attention_matches_fp32_far_below_a_memory_perturbation(video) -> None:
    """On the engine's own steady-state inputs, the bf16 memory attention is >10x closer
    to the fp32 module than the fp32 module is to itself with the memory scaled by 1.05."""
    engine = Sam2Engine(model="random-tiny", device="cpu", precision="mixed")
    calls: list[tuple[dict, torch.Tensor]] = []
    pending: list[dict] = []
    attention = engine._model.memory_attention
    attention.register_forward_pre_hook(
        lambda _m, _a, kw: pending.append({k: v for k, v in kw.items()}), with_kwargs=True
    )
    attention.register_forward_hook(lambda _m, _a, out: calls.append((pending.pop(), out)))
    engine.set_video(video)
    engine.add_prompts(PROMPTS)
    list(engine.propagate())
    reference = Sam2Engine(model="random-tiny", device="cpu", precision="float32")
    ref_attention = reference._model.memory_attention
    for name, tensor in ref_attention.state_dict().items():
        assert torch.equal(tensor, attention.state_dict()[name]), name
    steady = [(kw, out) for kw, out in calls if kw["memory"].shape[0] > 6 * 64]
    assert len(steady) >= 4  # full memory bank, both objects
    fast_err, perturbed = 0.0, float("inf")
    with torch.inference_mode():
        for kwargs, out in steady:
            exact = ref_attention(**kwargs)
            shifted = ref_attention(**{**kwargs, "memory": kwargs["memory"] * 1.05})
            fast_err = max(fast_err, float((out - exact).abs().max()))
            perturbed = min(perturbed, float((shifted - exact).abs().max()))
    assert 0 < fast_err
    assert perturbed > 10 * fast_err
    engine.close()
    reference.close()


@needs_bf16
def test_mixed_precision_reports_its_settings() -> None:
    engine = Sam2Engine(model="random-tiny", device="cpu", precision="mixed")
    settings = engine.info.settings
    assert settings["precision"] == "mixed"
    assert settings["fast_attention_modules"] == len(engine._model.memory_attention.layers)
    engine.close()


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_mixed_only_on_a_cpu_with_native_bf16(monkeypatch, native) -> None:
    import warnings

    monkeypatch.setattr(fastpath_module, "bf16_matmul_supported", lambda device: native)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine = Sam2Engine(model="random-tiny", device="cpu")
    assert not [w for w in caught if "bf16" in str(w.message)]  # no fallback warning
    settings = engine.info.settings
    assert settings["precision"] == ("mixed" if native else "float32")
    assert (settings["fast_attention_modules"] > 0) is native
    engine.close()


def test_mixed_falls_back_to_float32_without_native_bf16(monkeypatch) -> None:
    monkeypatch.setattr(fastpath_module, "bf16_matmul_supported", lambda device: False)
    with pytest.warns(UserWarning, match="native bf16"):
        engine = Sam2Engine(model="random-tiny", device="cpu", precision="mixed")
    assert engine.info.settings["precision"] == "float32"
    assert engine.info.settings["fast_attention_modules"] == 0
    assert "forward" not in vars(engine._model.memory_attention.layers[0].cross_attn_image)
    engine.close()


def test_memory_frames_limits_the_memory_keys(video) -> None:
    sizes: dict[object, list[int]] = {}
    for limit in (None, 2):
        engine = Sam2Engine(
            model="random-tiny", device="cpu", precision="float32", memory_frames=limit
        )
        seen: list[int] = []
        engine._model.memory_attention.register_forward_pre_hook(
            lambda _m, _a, kw, seen=seen: seen.append(kw["memory"].shape[0]), with_kwargs=True
        )
        engine.set_video(video)
        engine.add_prompt(PROMPTS[0])
        list(engine.propagate())
        assert engine.info.settings["memory_frames"] == limit
        sizes[limit] = seen
        engine.close()
    tokens = 8 * 8  # memory tokens per frame of random-tiny
    # with the bank full: 1 prompted + 6 (default) or 2 recent frames, plus pointers
    assert max(sizes[None]) - max(sizes[2]) == 4 * tokens
    assert max(sizes[2]) < (1 + 2 + 1) * tokens


@pytest.mark.parametrize("bad", [0, 7, -1])
def test_memory_frames_out_of_range_is_a_clear_error(bad: int) -> None:
    with pytest.raises(EngineError, match="memory_frames must be between 1 and 6"):
        Sam2Engine(model="random-tiny", device="cpu", memory_frames=bad)


def test_mixed_engine_propagation_is_cancellable_and_keeps_results(video) -> None:
    import threading

    engine = Sam2Engine(model="random-tiny", device="cpu", precision="mixed")
    engine.set_video(video)
    engine.add_prompt(PROMPTS[0])
    cancel = threading.Event()
    frames = []
    for result in engine.propagate(cancel=cancel):
        frames.append(result.frame)
        if len(frames) == 3:
            cancel.set()
    assert frames == [2, 3, 4]
    again = [r.frame for r in engine.propagate(start=4)]
    assert again[0] == 4 and again[-1] == N_FRAMES - 1
    engine.close()


def test_edgetam_folder_with_hiera_encoder_loads_without_timm(tmp_path) -> None:
    """Only EdgeTAM configs whose encoder is a timm model need timm."""
    from transformers import EdgeTamVideoConfig, EdgeTamVideoModel

    from napari_sam2v.engines.sam2.loading import _load_folder
    from napari_sam2v.errors import ModelError

    config = EdgeTamVideoConfig()
    config.vision_config.backbone_config.blocks_per_stage = [1, 1, 1, 1]
    config.vision_config.backbone_config.global_attention_blocks = [2]
    config.memory_attention_num_layers = 1
    EdgeTamVideoModel(config).save_pretrained(tmp_path / "hiera")
    model = _load_folder(tmp_path / "hiera")
    assert model.config.model_type == "edgetam_video"
    timm_folder = tmp_path / "timm"
    timm_folder.mkdir()
    text = (tmp_path / "hiera" / "config.json").read_text()
    (timm_folder / "config.json").write_text(
        text.replace('"sam2_hiera_det_model"', '"timm_wrapper"')
    )
    try:
        import timm  # noqa: F401
    except Exception:
        with pytest.raises(ModelError, match="timm"):
            _load_folder(timm_folder)


@pytest.mark.slow
def test_edgetam_engine_clicks_refines_and_propagates(tmp_path) -> None:
    """EdgeTAM encodes memory with the click (it has no deferred memory encoding)."""
    from transformers import EdgeTamVideoConfig, EdgeTamVideoModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        EdgeTamVideoModel(EdgeTamVideoConfig()).save_pretrained(tmp_path / "edgetam")
    engine = Sam2Engine(model=str(tmp_path / "edgetam"), device="cpu", progress=False)
    frames = (np.random.default_rng(0).random((3, 48, 64, 3)) * 255).astype(np.uint8)
    engine.set_video(frames)
    first = engine.add_prompt(Prompt(frame=0, object_id=1, points=[[30, 20]]))
    assert first.masks[1].shape == (48, 64)
    engine.add_prompt(Prompt(frame=0, object_id=1, points=[[30, 20], [10, 40]], labels=[1, 0]))
    results = list(engine.propagate())
    assert [r.frame for r in results] == [0, 1, 2]
    assert all(np.isfinite(r.scores[1].object_score_logit) for r in results)
    engine.close()


# -- the opt-in "fast" level -------------------------------------------------------------
def test_enable_fast_path_levels_and_uninstall() -> None:
    engine = Sam2Engine(model="random-tiny", device="cpu", precision="float32")
    model = engine._model
    with pytest.raises(ValueError, match="level"):
        enable_fast_path(model, "turbo")
    layers = model.memory_attention.layers
    assert enable_fast_path(model, "fast") == 2 * len(layers)  # self- and cross-attention
    assert "forward" in vars(layers[0].linear1)
    assert "forward" in vars(model.vision_encoder.backbone.blocks[0])
    uninstall(model)
    assert "forward" not in vars(layers[0].linear1)
    assert "forward" not in vars(layers[0].self_attn)
    assert "forward" not in vars(model.vision_encoder.backbone.blocks[0])
    assert enable_fast_path(model, "mixed") == len(layers)  # cross-attention only
    assert "forward" not in vars(layers[0].linear1)
    engine.close()


@needs_bf16
def test_fast_level_drifts_more_than_mixed_but_keeps_masks(video) -> None:
    ref_masks, ref_features = _run(video)
    _, mixed_features = _run(video, precision="mixed")
    fast_masks, fast_features = _run(video, precision="fast")
    ious = [
        _iou(fast_masks[frame][oid], ref_masks[frame][oid]) for frame in ref_masks for oid in (1, 2)
    ]
    assert min(ious) >= 0.97
    # larger drift of the memory-conditioned features than "mixed": why it is opt-in
    assert _feature_diff(fast_features, ref_features) > 2 * _feature_diff(
        mixed_features, ref_features
    )
