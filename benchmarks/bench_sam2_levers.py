"""One lever at a time: SAM 2.1-tiny memory attention and image encoder variants on CPU.

Usage::

    python -m benchmarks.bench_sam2_levers [--reps 3] [--threads 2]

Inputs have the steady-state shapes of a 1024x1024 SAM 2 step: 4096 image tokens
and 7 memory frames x 4096 tokens + 36 object-pointer tokens (~28,700 keys). The
model is the SAM 2.1-tiny architecture with random weights (seed 0) and the memory
is random; the errors below are therefore relative measures of numerical drift,
not of mask quality. Variants run interleaved ``--reps`` times; the JSON line
printed gives, per variant, the median and minimum seconds and the maximum
absolute difference to the fp32 output (relative to the output's magnitude;
none for ``memory_frames=3``, whose inputs differ by design).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main", "measure"]


def _bf16_blocks(model: Any) -> None:
    """Whole Hiera blocks under bf16 autocast (rejected lever, measured for reference)."""
    import torch

    for block in model.vision_encoder.backbone.blocks:
        original = block.forward

        def forward(*args: Any, _original: Callable = original, **kwargs: Any) -> Any:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return _original(*args, **kwargs).to(torch.float32)

        block.forward = forward


def measure(reps: int = 3, threads: int = 2) -> dict[str, Any]:
    """Time every variant ``reps`` times (interleaved); return the table as a dict."""
    import torch
    from transformers import Sam2VideoModel

    from napari_sam2v.engines.sam2.configs import _VARIANTS, sam2_video_config
    from napari_sam2v.engines.sam2.fastpath import (
        install_bf16_encoder,
        install_fast_attention,
        uninstall,
    )

    warnings.simplefilter("ignore")
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Sam2VideoModel(sam2_video_config(_VARIANTS[0], sam21=True)).eval()
    n_mem = 7 * 4096 + 36
    attention_inputs = {
        "current_vision_features": torch.randn(4096, 1, 256, generator=gen),
        "current_vision_position_embeddings": torch.randn(4096, 1, 256, generator=gen),
        "memory": torch.randn(n_mem, 1, 64, generator=gen),
        "memory_posision_embeddings": torch.randn(n_mem, 1, 64, generator=gen),
        "num_object_pointer_tokens": 36,
    }
    short = dict(attention_inputs)
    keep = 4 * 4096  # 1 conditioning + 3 recent frames (memory_frames=3)
    for key in ("memory", "memory_posision_embeddings"):
        short[key] = torch.cat([attention_inputs[key][:keep], attention_inputs[key][-36:]])
    pixels = torch.randn(1, 3, 1024, 1024, generator=gen)

    def attention(inputs: dict[str, Any]) -> torch.Tensor:
        return model.memory_attention(**inputs)

    def encoder() -> torch.Tensor:
        return model.get_image_features(pixels).fpn_hidden_states[-1]

    variants: list[tuple[str, str, Callable[[], None], Callable[[], torch.Tensor]]] = [
        (
            "memory_attention",
            "fp32 SDPA (transformers)",
            lambda: None,
            lambda: attention(attention_inputs),
        ),
        (
            "memory_attention",
            "bf16 chunked cross-attention (mixed)",
            lambda: install_fast_attention(model, cross_only=True),
            lambda: attention(attention_inputs),
        ),
        (
            "memory_attention",
            "bf16 chunked cross-attention, chunk 4096",
            lambda: install_fast_attention(model, cross_only=True, chunk=4096),
            lambda: attention(attention_inputs),
        ),
        (
            "memory_attention",
            "bf16 chunked cross-attention, chunk 256",
            lambda: install_fast_attention(model, cross_only=True, chunk=256),
            lambda: attention(attention_inputs),
        ),
        (
            "memory_attention",
            "bf16 chunked cross + self-attention",
            lambda: install_fast_attention(model),
            lambda: attention(attention_inputs),
        ),
        (
            "memory_attention",
            "mixed, memory_frames=3",
            lambda: install_fast_attention(model, cross_only=True),
            lambda: attention(short),
        ),
        ("image_encoder", "fp32 (transformers)", lambda: None, encoder),
        ("image_encoder", "bf16 MLPs (mixed)", lambda: install_bf16_encoder(model), encoder),
        ("image_encoder", "bf16 whole blocks", lambda: _bf16_blocks(model), encoder),
    ]
    reference: dict[str, torch.Tensor] = {}
    times: dict[str, list[float]] = {name: [] for _, name, _, _ in variants}
    errors: dict[str, float] = {}
    with torch.inference_mode():
        for _ in range(reps):
            for part, name, setup, call in variants:
                uninstall(model)
                for block in model.vision_encoder.backbone.blocks:
                    vars(block).pop("forward", None)
                setup()
                t0 = time.perf_counter()
                out = call()
                times[name].append(time.perf_counter() - t0)
                if part not in reference:
                    reference[part] = out
                if name not in errors and "memory_frames" not in name:
                    scale = float(reference[part].abs().max())
                    errors[name] = float((out - reference[part]).abs().max()) / scale
    rows = []
    for part, name, _, _ in variants:
        rows.append(
            {
                "part": part,
                "variant": name,
                "s_median": statistics.median(times[name]),
                "s_min": min(times[name]),
                "rel_max_diff_vs_fp32": errors.get(name),
            }
        )
    return {"reps": reps, "threads": threads, "rows": rows}


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.reps, args.threads)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
