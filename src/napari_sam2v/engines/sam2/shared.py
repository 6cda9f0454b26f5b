"""Work that every object of a frame shares: the first memory-attention self-attention.

transformers runs the memory attention once per object (batch 1). Its first layer
starts with a self-attention over the current frame's image features, whose input
does not depend on the object: the image features plus their position encoding,
layer-normed. :func:`install_shared_first_attention` computes it once per frame and
hands the same result to the other objects of that frame. A call is served from the
cache only when its input equals the cached input element for element
(``torch.equal``), so the result is bit-identical to computing it again; the
check costs one comparison of 4096 x 256 values. The later layers attend to each
object's own memory and are not shared.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["SharedAttention", "install_shared_first_attention", "uninstall_shared_first_attention"]


class SharedAttention:
    """Cache of one attention module's last call, reused for an equal input.

    Parameters
    ----------
    forward : callable
        The module's forward (transformers' or the bf16 fast path's).

    Attributes
    ----------
    hits, misses : int
        Calls served from the cache and calls computed.
    """

    def __init__(self, forward: Any) -> None:
        self.forward = forward
        self.hits = 0
        self.misses = 0
        #: The instance-level forward this wrapper replaced (``None``: the class's).
        self.replaced: Any = None
        self._key: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._value: Any = None

    def __call__(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        **kwargs: Any,
    ) -> Any:
        """Self-attention of ``query``; served from the cache when the inputs are equal."""
        shared = query is key and key is value and not kwargs and not torch.is_grad_enabled()
        cos, sin = position_embeddings
        if shared and self._key is not None and _same(self._key, (query, cos, sin)):
            self.hits += 1
            return self._value
        out = self.forward(query, key, value, position_embeddings, **kwargs)
        self.misses += 1
        # keep copies: the caller may reuse or free its buffers before the next object
        self._key = (query.clone(), cos.clone(), sin.clone()) if shared else None
        self._value = out if shared else None
        return out


def _same(cached: tuple[torch.Tensor, ...], now: tuple[torch.Tensor, ...]) -> bool:
    return all(
        a.shape == b.shape and a.dtype == b.dtype and a.device == b.device and torch.equal(a, b)
        for a, b in zip(cached, now, strict=True)
    )


def _first_self_attention(model: nn.Module) -> nn.Module | None:
    layers = getattr(getattr(model, "memory_attention", None), "layers", None)
    if not layers:
        return None
    module = getattr(layers[0], "self_attn", None)
    if type(module).__name__ != "Sam2VideoRoPEAttention":
        return None  # EdgeTAM's perceiver memory attention is left alone
    return module


def install_shared_first_attention(model: nn.Module) -> SharedAttention | None:
    """Share the first memory-attention self-attention among the objects of a frame.

    Install it after any other patch of that module (the bf16 fast path), since it
    wraps the module's current forward.

    Parameters
    ----------
    model : Sam2VideoModel
        Patched in place; models without SAM 2's RoPE memory attention (EdgeTAM)
        are left alone.

    Returns
    -------
    SharedAttention or None
        The cache (its ``hits`` count the calls saved), or ``None`` if not installed.
    """
    module = _first_self_attention(model)
    if module is None:
        return None
    current = module.__dict__.get("forward")
    if isinstance(current, SharedAttention):
        return current
    shared = SharedAttention(module.forward)
    shared.replaced = current  # an instance-level forward (the fast path's), or None
    module.forward = shared
    return shared


def uninstall_shared_first_attention(model: nn.Module) -> None:
    """Undo :func:`install_shared_first_attention` (the wrapped forward comes back)."""
    module = _first_self_attention(model)
    if module is None:
        return
    current = module.__dict__.get("forward")
    if not isinstance(current, SharedAttention):
        return
    if current.replaced is None:
        del module.forward  # back to the class's forward
    else:
        module.forward = current.replaced
