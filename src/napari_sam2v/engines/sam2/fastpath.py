"""CPU fast path for SAM 2: bf16 chunked memory attention and a bf16 image encoder.

SAM 2's memory attention cross-attends 4096 image tokens to every memory token
(7 frames x 4096 spatial tokens plus the object-pointer tokens, ~28,700 keys) in
each of its 4 layers; on a CPU this is most of a propagation step. PyTorch's CPU
``scaled_dot_product_attention`` is a fused fp32 kernel that gains nothing from
bf16 inputs, so :func:`install_fast_attention` replaces the forward of the memory
attention's RoPE attention modules by :func:`fast_rope_attention`:

* the scores and the weighted sum are bf16 matrix products (the matmul kernels
  accumulate in fp32), computed over chunks of queries so that the score matrix
  of one chunk stays small; the softmax is evaluated in fp32 and rounded to bf16;
* the value projection is moved after the weighted sum: ``P (M W^T + b) =
  (P M) W^T + b`` because each row of ``P`` sums to 1, so the weighted sum runs
  over the 64-channel memory instead of the 256-channel projected values
  (4x fewer operations for that product), and the projected values of ~28,700
  tokens are never formed;
* query/key projections, RoPE and the output projection stay in fp32.

:func:`install_bf16_encoder` runs the MLPs of the image encoder's Hiera blocks
under bf16 autocast and returns fp32, so everything downstream is unchanged; the
encoder's global-attention blocks use the same chunked kernel
(:mod:`~napari_sam2v.engines.sam2.hiera`).

Both change results by bf16 rounding only; the engine exposes them as the opt-in
``precision="mixed"`` mode, whose agreement with the fp32 model is tested and
whose effect is documented in ``docs/performance.md``.

``precision="fast"`` (:func:`enable_fast_path`) goes further: the self-attention
and the MLPs of the memory attention, and whole Hiera blocks, also run with bf16
products. Its drift of the memory-conditioned features is larger than the effect
of a 5 % change of the memory on random weights, so it is a separate opt-in
level with its measured effect documented, not part of ``"mixed"``.
"""

from __future__ import annotations

import math
import types
import warnings
from typing import Any

import torch
from torch import nn

__all__ = [
    "DEFAULT_CHUNK",
    "FAST_LEVELS",
    "bf16_matmul_supported",
    "chunked_attention",
    "enable_fast_path",
    "fast_rope_attention",
    "install_bf16_encoder",
    "install_bf16_memory_mlp",
    "install_fast_attention",
    "install_precision",
    "uninstall",
]

#: Precision levels that :func:`enable_fast_path` installs (the rest are plain torch).
FAST_LEVELS = ("mixed", "fast")

#: Queries per chunk in :func:`chunked_attention` (scores of one chunk: chunk x keys).
DEFAULT_CHUNK = 1024

#: Attribute set on patched modules (to make installation idempotent and reversible).
_MARK = "_sam2v_fastpath"


def bf16_matmul_supported(device: torch.device) -> bool:
    """Whether bf16 matrix products are native (fast) on ``device``.

    On x86 CPUs this needs AVX-512 BF16 or AMX; on CUDA, compute capability 8.0+.
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        mkldnn = getattr(torch.backends, "mkldnn", None)
        check = getattr(getattr(torch.ops, "mkldnn", None), "_is_mkldnn_bf16_supported", None)
        if mkldnn is None or not mkldnn.is_available() or check is None:
            return False
        return bool(check())
    return False


def chunked_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    *,
    scaling: float,
    chunk: int = DEFAULT_CHUNK,
    dtype: torch.dtype = torch.bfloat16,
) -> torch.Tensor:
    """Softmax attention computed over chunks of queries with low-precision products.

    Parameters
    ----------
    query : torch.Tensor of shape (..., Lq, D)
    key : torch.Tensor of shape (..., Lk, D)
    value : torch.Tensor of shape (..., Lk, Dv)
        Leading dimensions must match (or broadcast) between the three.
    scaling : float
        Multiplier of the scores (``D ** -0.5`` for standard attention).
    chunk : int, optional
        Queries per chunk.
    dtype : torch.dtype, optional
        Dtype of the two matrix products (bf16 by default; they accumulate in
        fp32). The softmax is evaluated in fp32 and rounded to ``dtype``.

    Returns
    -------
    torch.Tensor of shape (..., Lq, Dv)
        fp32 result.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    # transposed once: a transposed view would be copied for every chunk by matmul
    key_t = key.to(dtype).transpose(-1, -2).contiguous()
    value_c = value.to(dtype)
    scaled = (query * scaling).to(dtype)
    n_queries = query.shape[-2]
    out = torch.empty(
        (*torch.broadcast_shapes(query.shape[:-2], value.shape[:-2]), n_queries, value.shape[-1]),
        dtype=torch.float32,
        device=query.device,
    )
    # one score buffer for every chunk, overwritten in place: a fresh (chunk x keys)
    # tensor per product and per softmax cost more in page faults than the softmax
    # (a flat buffer, so that the shorter last chunk is a contiguous view too:
    # the in-place softmax needs contiguous rows)
    lead = torch.broadcast_shapes(query.shape[:-2], key.shape[:-2])
    n_keys = key.shape[-2]
    buffer = torch.empty(
        math.prod(lead) * min(chunk, n_queries) * n_keys, dtype=dtype, device=query.device
    )
    for begin in range(0, n_queries, chunk):
        rows = min(chunk, n_queries - begin)
        scores = buffer[: math.prod(lead) * rows * n_keys].view(*lead, rows, n_keys)
        torch.matmul(scaled[..., begin : begin + rows, :], key_t, out=scores)
        # PyTorch's CPU softmax evaluates reduced-precision inputs in fp32 and
        # rounds once: bit-identical to softmax(scores.float()).to(dtype), ~2.5x
        # faster; it reads each element before writing it, so it may run in place
        torch.ops.aten._softmax.out(scores, -1, False, out=scores)
        out[..., begin : begin + rows, :] = torch.matmul(scores, value_c)
    return out


def fast_rope_attention(
    self: Any,  # a transformers Sam2VideoRoPEAttention (its attributes are untyped)
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    position_embeddings: tuple[torch.Tensor, torch.Tensor],
    num_k_exclude_rope: int = 0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Drop-in forward of transformers' ``Sam2VideoRoPEAttention`` (inference only).

    Same inputs and outputs as the original; see the module docstring for what
    differs inside. Bound to a module instance by :func:`install_fast_attention`.
    """
    from transformers.models.sam2_video.modeling_sam2_video import apply_rotary_pos_emb_2d

    batch, points = query.shape[:2]
    heads, head_dim = self.num_attention_heads, self.head_dim
    shape = (batch * points, -1, heads, head_dim)
    q = self.q_proj(query).view(*shape).transpose(1, 2)
    k = self.k_proj(key).view(*shape).transpose(1, 2)
    cos, sin = position_embeddings
    q, k = apply_rotary_pos_emb_2d(
        q, k, cos, sin, repeat_freqs_k=self.rope_k_repeat, num_k_exclude_rope=num_k_exclude_rope
    )
    chunk, dtype = getattr(self, _MARK)
    in_dim = value.shape[-1]
    if in_dim < head_dim:
        # weighted sum over the raw memory, then the value projection per head
        memory = value.reshape(batch * points, 1, -1, in_dim)
        mixed = chunked_attention(q, k, memory, scaling=self.scaling, chunk=chunk, dtype=dtype)
        weight = self.v_proj.weight.view(heads, head_dim, in_dim)
        out = torch.matmul(mixed, weight.transpose(1, 2)) + self.v_proj.bias.view(
            heads, 1, head_dim
        )
    else:
        v = self.v_proj(value).view(*shape).transpose(1, 2)
        out = chunked_attention(q, k, v, scaling=self.scaling, chunk=chunk, dtype=dtype)
    out = out.transpose(1, 2).reshape(batch, points, -1, heads * head_dim)
    return self.o_proj(out.to(query.dtype)), None


def _rope_modules(model: nn.Module) -> list[nn.Module]:
    attention = getattr(model, "memory_attention", None)
    layers = getattr(attention, "layers", None)
    if layers is None:
        return []
    found: list[nn.Module] = []
    for layer in layers:
        for name in ("self_attn", "cross_attn_image"):
            module = getattr(layer, name, None)
            if isinstance(module, nn.Module) and type(module).__name__ == "Sam2VideoRoPEAttention":
                found.append(module)
    return found


def install_fast_attention(
    model: nn.Module,
    *,
    chunk: int = DEFAULT_CHUNK,
    dtype: torch.dtype = torch.bfloat16,
    cross_only: bool = False,
) -> int:
    """Use :func:`fast_rope_attention` in the memory attention of a SAM 2 video model.

    Parameters
    ----------
    model : Sam2VideoModel
        Patched in place (its weights and ``state_dict`` are unchanged).
        Models without ``Sam2VideoRoPEAttention`` modules (EdgeTAM) are left alone.
    chunk : int, optional
        Queries per chunk.
    dtype : torch.dtype, optional
        Dtype of the attention products; ``torch.float32`` keeps the exact
        arithmetic of the model up to summation order (used by the tests).
    cross_only : bool, optional
        Patch only the cross-attention to the memory, not the self-attention.

    Returns
    -------
    int
        Number of attention modules patched.
    """
    patched = 0
    for module in _rope_modules(model):
        if cross_only and module.kv_in_dim == module.hidden_size:
            continue
        module.forward = types.MethodType(fast_rope_attention, module)
        setattr(module, _MARK, (int(chunk), dtype))
        patched += 1
    return patched


def _bf16_forward(module: nn.Module) -> Any:
    original = module.forward
    device_type = next(module.parameters()).device.type

    def forward(*args: Any, **kwargs: Any) -> torch.Tensor:
        with torch.autocast(device_type, dtype=torch.bfloat16):
            out = original(*args, **kwargs)
        return out.to(torch.float32)

    return forward


def _encoder_parts(model: nn.Module, *, whole_blocks: bool = False) -> list[nn.Module]:
    backbone = getattr(getattr(model, "vision_encoder", None), "backbone", None)
    blocks = getattr(backbone, "blocks", None)
    if blocks is None:
        return []
    if whole_blocks:
        return list(blocks)
    return [block.mlp for block in blocks if isinstance(getattr(block, "mlp", None), nn.Module)]


def _memory_mlps(model: nn.Module) -> list[nn.Module]:
    layers = getattr(getattr(model, "memory_attention", None), "layers", None) or []
    return [
        linear
        for layer in layers
        for linear in (getattr(layer, "linear1", None), getattr(layer, "linear2", None))
        if isinstance(linear, nn.Module)
    ]


def _patch_bf16(modules: list[nn.Module]) -> int:
    patched = 0
    for module in modules:
        if getattr(module, _MARK, False):
            continue
        module.forward = _bf16_forward(module)
        setattr(module, _MARK, True)
        patched += 1
    return patched


def install_bf16_encoder(model: nn.Module, *, whole_blocks: bool = False) -> int:
    """Run the MLPs of the Hiera image encoder in bf16 (autocast), returning fp32.

    Only the blocks' MLPs (two thirds of the encoder's matrix work) are converted
    by default: running whole blocks, the patch embedding or the neck in bf16 moved
    masks of the random-weight test model by more than the agreement tolerance
    (IoU down to 0.81 for the whole encoder), while the MLPs alone keep IoU >= 0.998.

    Parameters
    ----------
    model : Sam2VideoModel
        Patched in place.
    whole_blocks : bool, optional
        Run whole Hiera blocks (attention included) under bf16 autocast (the
        ``"fast"`` level).

    Returns
    -------
    int
        Number of modules patched (0 for encoders without Hiera blocks, e.g. EdgeTAM).
    """
    return _patch_bf16(_encoder_parts(model, whole_blocks=whole_blocks))


def install_bf16_memory_mlp(model: nn.Module) -> int:
    """Run the two linear layers of each memory-attention MLP in bf16, returning fp32.

    Returns
    -------
    int
        Number of linear layers patched.
    """
    return _patch_bf16(_memory_mlps(model))


def enable_fast_path(model: nn.Module, level: str) -> int:
    """Install the bf16 fast path of a precision level on a SAM 2 video model.

    Parameters
    ----------
    model : Sam2VideoModel or EdgeTamVideoModel
        Patched in place (weights unchanged; :func:`uninstall` reverts it).
    level : {"mixed", "fast"}
        ``"mixed"``: bf16 chunked cross-attention to the memory, bf16 chunked
        global attention and bf16 MLPs in the encoder. ``"fast"``: also bf16
        chunked self-attention and bf16 MLPs in the memory attention, and whole
        Hiera blocks in bf16.

    Returns
    -------
    int
        Number of memory-attention modules given the chunked kernel.

    Raises
    ------
    ValueError
        If ``level`` is not one of :data:`FAST_LEVELS`.
    """
    from napari_sam2v.engines.sam2.hiera import install_exact_encoder

    if level not in FAST_LEVELS:
        raise ValueError(f"level must be one of {FAST_LEVELS}, got {level!r}")
    fast = level == "fast"
    patched = install_fast_attention(model, cross_only=not fast)
    install_exact_encoder(model, bf16_attention=True)
    install_bf16_encoder(model, whole_blocks=fast)
    if fast:
        install_bf16_memory_mlp(model)
    return patched


def install_precision(model: nn.Module, level: str, device: torch.device) -> tuple[str, int]:
    """Install what precision ``level`` needs on ``device``.

    ``"auto"`` stands for ``"mixed"`` on a CPU with native bf16 and for
    ``"float32"`` elsewhere (the fast path has not been measured on a GPU).
    ``"mixed"`` and ``"fast"`` fall back to ``"float32"``, with a warning, on a
    device without native bf16 products. Other levels install nothing.

    Returns
    -------
    level : str
        The precision level in use.
    patched : int
        Number of memory-attention modules given the chunked kernel.
    """
    if level == "auto":
        level = "mixed" if device.type == "cpu" and bf16_matmul_supported(device) else "float32"
    if level not in FAST_LEVELS:
        return level, 0
    if not bf16_matmul_supported(device):
        warnings.warn(
            f"precision {level!r} needs native bf16 matrix products, which device "
            f"{device} lacks; using 'float32'",
            UserWarning,
            stacklevel=4,
        )
        return "float32", 0
    return level, enable_fast_path(model, level)


def uninstall(model: nn.Module) -> None:
    """Undo :func:`enable_fast_path` and the ``install_*`` functions of this module.

    Exact encoder shortcuts (:mod:`~napari_sam2v.engines.sam2.hiera`) that were
    installed stay, back on the fp32 attention kernel.
    """
    from napari_sam2v.engines.sam2.hiera import disable_bf16_attention

    disable_bf16_attention(model)
    for module in _rope_modules(model):
        if hasattr(module, _MARK):
            del module.forward
            delattr(module, _MARK)
    parts = _encoder_parts(model) + _encoder_parts(model, whole_blocks=True) + _memory_mlps(model)
    for module in parts:
        if getattr(module, _MARK, False):
            del module.forward
            delattr(module, _MARK)
