"""Exact shortcuts in transformers' SAM 2 image encoder, and its optional bf16 attention.

Three things in transformers' Hiera encoder cost time on every frame without
changing its output:

* ``Sam2MultiScaleAttention.forward`` computes a per-token ``query @ key^T`` and
  its softmax whose result is never used (the attention itself is computed by
  the attention interface afterwards): about 4 % of the encoder on a CPU;
* the windowed position embedding is re-interpolated (bicubic) from the same
  parameters for the same size on every call;
* the FPN neck's sine position encodings are rebuilt for each of its four
  levels; transformers caches only the last shape, so every call misses.

:func:`install_exact_encoder` replaces these by the same computation without the
dead work, and caches the two position embeddings per size (keyed by the
parameters' version counters, so an in-place change of the weights is seen).
The output is bit-identical to transformers' (tested). With ``bf16_attention``
the global-attention blocks (every query attends to the whole image) use the
bf16 chunked kernel of :mod:`~napari_sam2v.engines.sam2.fastpath` instead of
the fp32 one; that changes results (by bf16 rounding) and is part of the
``"mixed"`` and ``"fast"`` levels only.
"""

from __future__ import annotations

import types
from typing import Any

import torch
from torch import nn

__all__ = [
    "GLOBAL_ATTENTION_MIN_TOKENS",
    "disable_bf16_attention",
    "install_exact_encoder",
    "uninstall_exact_encoder",
]

#: Key sequences at least this long use the bf16 kernel when ``bf16_attention`` is on
#: (the windowed blocks attend within 64-196 tokens and stay on the fp32 kernel).
GLOBAL_ATTENTION_MIN_TOKENS = 1024

_MARK = "_sam2v_exact"


def _attention_forward(self: Any, hidden_states: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """transformers' ``Sam2MultiScaleAttention.forward`` without its unused scores."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    from transformers.models.sam2.modeling_sam2 import do_pool, eager_attention_forward

    from napari_sam2v.engines.sam2.fastpath import chunked_attention

    batch, height, width, _ = hidden_states.shape
    heads = self.num_attention_heads
    qkv = self.qkv(hidden_states).reshape(batch, height * width, 3, heads, -1)
    query, key, value = torch.unbind(qkv, 2)
    if self.query_stride:
        query = do_pool(query.reshape(batch, height, width, -1), self.query_stride)
        height, width = query.shape[1:3]
        query = query.reshape(batch, height * width, heads, -1)
    query, key, value = query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2)
    if getattr(self, _MARK) and key.shape[-2] >= GLOBAL_ATTENTION_MIN_TOKENS:
        out = chunked_attention(query, key, value, scaling=self.scale).to(query.dtype)
        out = out.transpose(1, 2)
    else:
        interface = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        out, _ = interface(
            self,
            query,
            key,
            value,
            attention_mask=None,
            is_causal=self.is_causal,
            scaling=self.scale,
            **kwargs,
        )
    return self.proj(out.reshape(batch, height, width, -1))


def _cached_window_embedding(backbone: Any) -> Any:
    original = backbone._get_pos_embed
    cache: dict[tuple, torch.Tensor] = {}

    def get_pos_embed(hw: tuple[int, int]) -> torch.Tensor:
        key = (
            tuple(int(v) for v in hw),
            backbone.pos_embed._version,
            backbone.pos_embed_window._version,
            backbone.pos_embed.device,
            backbone.pos_embed.dtype,
            torch.is_inference_mode_enabled(),
        )
        if key not in cache:
            cache.clear()
            cache[key] = original(hw)
        return cache[key]

    return get_pos_embed


def _cached_sine_encoding(encoding: nn.Module) -> Any:
    original = encoding.forward
    cache: dict[tuple, torch.Tensor] = {}

    def forward(
        shape: torch.Size,
        device: torch.device | str,
        dtype: torch.dtype,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if mask is not None:
            return original(shape, device, dtype, mask)
        key = (tuple(shape), str(device), dtype, torch.is_inference_mode_enabled())
        if key not in cache:
            if len(cache) >= 8:
                cache.clear()
            cache[key] = original(shape, device, dtype)
        return cache[key]

    return forward


def _parts(model: nn.Module) -> tuple[Any, list[nn.Module], Any]:
    encoder = getattr(model, "vision_encoder", None)
    backbone = getattr(encoder, "backbone", None)
    blocks = getattr(backbone, "blocks", None) or []
    attentions = [
        block.attn
        for block in blocks
        if type(getattr(block, "attn", None)).__name__ == "Sam2MultiScaleAttention"
    ]
    encoding = getattr(getattr(encoder, "neck", None), "position_encoding", None)
    if type(encoding).__name__ != "Sam2SinePositionEmbedding":
        encoding = None
    if type(backbone).__name__ != "Sam2HieraDetModel":
        backbone = None
    return backbone, attentions, encoding


def install_exact_encoder(model: nn.Module, *, bf16_attention: bool = False) -> int:
    """Skip the dead work of a SAM 2 Hiera encoder; optionally use bf16 global attention.

    Parameters
    ----------
    model : Sam2VideoModel
        Patched in place. Encoders other than Hiera (EdgeTAM) are left alone.
    bf16_attention : bool, optional
        Use the bf16 chunked kernel in the global-attention blocks (changes
        results: the ``"mixed"`` and ``"fast"`` levels).

    Returns
    -------
    int
        Number of attention modules patched.
    """
    backbone, attentions, encoding = _parts(model)
    for attention in attentions:
        if not hasattr(attention, _MARK):
            attention.forward = types.MethodType(_attention_forward, attention)
        setattr(attention, _MARK, bool(bf16_attention))
    if backbone is not None and not hasattr(backbone, _MARK):
        backbone._get_pos_embed = _cached_window_embedding(backbone)
        setattr(backbone, _MARK, True)
    if encoding is not None and not hasattr(encoding, _MARK):
        encoding.forward = _cached_sine_encoding(encoding)
        setattr(encoding, _MARK, True)
    return len(attentions)


def disable_bf16_attention(model: nn.Module) -> None:
    """Put patched global-attention blocks back on the fp32 kernel (shortcuts stay)."""
    for attention in _parts(model)[1]:
        if hasattr(attention, _MARK):
            setattr(attention, _MARK, False)


def uninstall_exact_encoder(model: nn.Module) -> None:
    """Undo :func:`install_exact_encoder`."""
    backbone, attentions, encoding = _parts(model)
    for module, name in [(a, "forward") for a in attentions] + [
        (backbone, "_get_pos_embed"),
        (encoding, "forward"),
    ]:
        if module is not None and hasattr(module, _MARK):
            delattr(module, name)
            delattr(module, _MARK)
