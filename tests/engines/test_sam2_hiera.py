"""Exact encoder shortcuts (dead work skipped, position embeddings cached) and bf16 attention."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from napari_sam2v.engines.sam2 import Sam2Engine, hiera

pytestmark = pytest.mark.filterwarnings("ignore:model 'random-tiny':UserWarning")


@pytest.fixture()
def model() -> nn.Module:
    engine = Sam2Engine(model="random-tiny", device="cpu")
    model = engine._model
    hiera.uninstall_exact_encoder(model)  # the engine installs it; start from transformers'
    return model


def _encode(model: nn.Module, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    with torch.inference_mode():
        out = model.get_image_features(pixels)
    return (*out.fpn_hidden_states, *out.fpn_position_encoding)


def _same(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def _pixels(seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(seed))


def test_shortcuts_are_bit_identical_and_uninstall(model: nn.Module) -> None:
    pixels = _pixels()
    reference = _encode(model, pixels)
    patched = hiera.install_exact_encoder(model)
    assert patched == len(model.vision_encoder.backbone.blocks)
    for _ in range(2):  # second call: served from the position-embedding caches
        assert _same(_encode(model, pixels), reference)
    other = _pixels(1)
    hiera.uninstall_exact_encoder(model)
    expected_other = _encode(model, other)
    assert "forward" not in vars(model.vision_encoder.backbone.blocks[0].attn)
    assert "_get_pos_embed" not in vars(model.vision_encoder.backbone)
    hiera.install_exact_encoder(model)
    assert _same(_encode(model, other), expected_other)


def test_cached_position_embedding_follows_weight_changes(model: nn.Module) -> None:
    hiera.install_exact_encoder(model)
    pixels = _pixels()
    before = _encode(model, pixels)[0]
    with torch.no_grad():
        model.vision_encoder.backbone.pos_embed.add_(0.5)
    after = _encode(model, pixels)[0]
    assert not torch.equal(before, after)
    hiera.uninstall_exact_encoder(model)
    assert torch.equal(_encode(model, pixels)[0], after)


def test_bf16_global_attention_is_close_but_not_exact(
    model: nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the test model's one global block attends over 8 x 8 tokens
    monkeypatch.setattr(hiera, "GLOBAL_ATTENTION_MIN_TOKENS", 64)
    pixels = _pixels()
    reference = _encode(model, pixels)[0]
    hiera.install_exact_encoder(model, bf16_attention=True)
    fast = _encode(model, pixels)[0]
    err = float((fast - reference).abs().max() / reference.abs().max())
    assert 0 < err < 2e-2
    hiera.disable_bf16_attention(model)
    assert torch.equal(_encode(model, pixels)[0], reference)


def test_models_without_a_hiera_encoder_are_left_alone() -> None:
    layer = nn.Linear(3, 3)
    assert hiera.install_exact_encoder(layer) == 0
    hiera.uninstall_exact_encoder(layer)
    hiera.disable_bf16_attention(layer)
    assert "forward" not in vars(layer)
