"""Matrix-product kernels for the memory attention's score product, one CPU thread.

The largest single cost left in ``precision="mixed"`` is the score product of the
memory cross-attention: per layer, 4096 queries against 28,708 keys of 256 channels,
run as bf16 products over chunks of 1024 queries. This benchmark times the product of
one chunk with every kernel that PyTorch offers on a CPU, and measures each one's error
against a float64 product of the same inputs:

``float32``
    ``torch.mm`` in fp32 (what transformers' SDPA computes).
``bfloat16``
    ``torch.mm`` of bf16 operands into a bf16 output (the ``mixed`` kernel).
``int8``
    ``torch._int_mm`` of operands quantised to int8 per query / per key (symmetric
    scales), rescaled to fp32 scores (which any use of the scores needs).
``int8_product``
    The same ``torch._int_mm`` alone, without the rescale (its error is measured
    after rescaling outside the timed call).

Time is the calling thread's CPU time (other jobs barely change it), the median of
``reps`` calls after one warm-up call. Error is the largest absolute difference to the
float64 product over its largest magnitude.

Usage::

    python -m benchmarks.bench_score_kernels [--out results.json] [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks.bench_engine import machine, thread_cpu_times

__all__ = ["KERNELS", "measure"]


#: A timed call and the conversion of its output to float64 scores.
Kernel = tuple[Callable[[], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]


def _same(out: torch.Tensor) -> torch.Tensor:
    return out.double()


def _bf16(q: torch.Tensor, kt: torch.Tensor) -> Kernel:
    qb, kb = q.bfloat16(), kt.bfloat16().contiguous()
    out = torch.empty(q.shape[0], kt.shape[1], dtype=torch.bfloat16)
    return (lambda: torch.mm(qb, kb, out=out)), _same


def _quantise(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    scale = x.abs().amax(dim=dim, keepdim=True).clamp_min(1e-12) / 127.0
    return torch.round(x / scale).to(torch.int8), scale


def _int8(q: torch.Tensor, kt: torch.Tensor) -> Kernel:
    qi, qs = _quantise(q, 1)
    ki, ks = _quantise(kt.contiguous(), 0)
    return (lambda: torch._int_mm(qi, ki).float() * qs * ks), _same


def _int8_product(q: torch.Tensor, kt: torch.Tensor) -> Kernel:
    qi, qs = _quantise(q, 1)
    ki, ks = _quantise(kt.contiguous(), 0)
    return (lambda: torch._int_mm(qi, ki)), lambda raw: raw.double() * qs.double() * ks.double()


def _fp32(q: torch.Tensor, kt: torch.Tensor) -> Kernel:
    return (lambda: torch.mm(q, kt)), _same


#: Kernel name -> factory taking (queries, transposed keys), see :data:`Kernel`.
KERNELS: dict[str, Callable[[torch.Tensor, torch.Tensor], Kernel]] = {
    "float32": _fp32,
    "bfloat16": _bf16,
    "int8": _int8,
    "int8_product": _int8_product,
}


def measure(
    *, queries: int = 1024, keys: int = 28_708, channels: int = 256, reps: int = 5, seed: int = 0
) -> dict[str, Any]:
    """Time and check every kernel of :data:`KERNELS` on one thread.

    Parameters
    ----------
    queries, keys, channels : int, optional
        Shape of the product: ``(queries x channels) @ (channels x keys)``.
    reps : int, optional
        Timed calls per kernel (after one warm-up call).
    seed : int, optional
        Seed of the random operands (standard normal, as projected tokens are).

    Returns
    -------
    dict
        ``{"shape": ..., "kernels": {name: {"cpu_ms", "rel_error", "speedup_vs_fp32"}}}``.
    """
    if min(queries, keys, channels, reps) < 1:
        raise ValueError("queries, keys, channels and reps must be >= 1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen = torch.Generator().manual_seed(seed)
        q = torch.randn(queries, channels, generator=gen)
        kt = torch.randn(keys, channels, generator=gen).t()
        exact = q.double() @ kt.double()
        scale = float(exact.abs().max())
        rows: dict[str, dict[str, float]] = {}
        for name, factory in KERNELS.items():
            call, to_float = factory(q, kt)
            error = float((to_float(call()) - exact).abs().max()) / scale
            times, _ = thread_cpu_times(call, reps)
            rows[name] = {"cpu_ms": 1000 * statistics.median(times), "rel_error": error}
    finally:
        torch.set_num_threads(threads)
    for row in rows.values():
        row["speedup_vs_fp32"] = rows["float32"]["cpu_ms"] / row["cpu_ms"]
    return {"shape": [queries, keys, channels], "reps": reps, "kernels": rows}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print (and optionally write) JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the JSON here")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    result = {"machine": machine(), "torch": torch.__version__, **measure(reps=args.reps)}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
