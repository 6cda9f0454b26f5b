"""Where a steady-state SAM 2 propagation step spends its time (per model component).

Usage::

    python -m benchmarks.profile_engine --model sam2.1-tiny-arch --precision mixed

The engine propagates a synthetic 480x640 video with one object until the memory
bank is full, then times ``--steps`` further frames with forward hooks on the
model's components (image encoder, memory attention, mask decoder, memory encoder,
prompt encoder); the rest of the step (frame reading and preprocessing, memory
gathering, mask upsampling, eviction) is reported as ``other``. Prints one JSON
line: seconds per step for each component, sorted, and its share.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.bench_engine import SIZES, LazyDisks, _random_model_folder

__all__ = ["COMPONENTS", "main", "profile"]

#: Model attributes timed separately.
COMPONENTS = (
    "vision_encoder",
    "memory_attention",
    "mask_decoder",
    "memory_encoder",
    "prompt_encoder",
)


def profile(
    *, model: str, precision: str, steps: int, model_root: Path, warmup: int = 8
) -> dict[str, Any]:
    """Time ``steps`` steady-state propagation steps per component; return the breakdown."""
    from napari_sam2v.engines.sam2 import Sam2Engine
    from napari_sam2v.prompts import Prompt

    warnings.simplefilter("ignore")
    path = model if model == "random-tiny" else str(_random_model_folder(model, model_root))
    engine = Sam2Engine(model=path, device="cpu", precision=precision, progress=False)
    video = LazyDisks(warmup + steps + 1, SIZES["480p"], 1)
    engine.set_video(video)
    cy, cx = video.centre(0, 0)
    engine.add_prompt(Prompt(frame=0, object_id=1, points=[[cx, cy]]))

    spent: dict[str, float] = defaultdict(float)
    started: dict[str, float] = {}
    handles = []
    for name in COMPONENTS:
        module = getattr(engine._model, name)

        def before(_m: Any, _a: Any, name: str = name) -> None:
            started[name] = time.perf_counter()

        def after(_m: Any, _a: Any, _o: Any, name: str = name) -> None:
            spent[name] += time.perf_counter() - started.pop(name)

        handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]

    totals = []
    t0 = time.perf_counter()
    for result in engine.propagate():
        now = time.perf_counter()
        if result.frame > warmup:
            totals.append(now - t0)
        elif result.frame == warmup:
            spent.clear()
        t0 = now
    for handle in handles:
        handle.remove()
    engine.close()
    n = len(totals)
    per_step = {name: spent[name] / n for name in COMPONENTS}
    per_step["other"] = max(0.0, statistics.fmean(totals) - sum(per_step.values()))
    ranked = sorted(per_step.items(), key=lambda kv: kv[1], reverse=True)
    step = statistics.fmean(totals)
    return {
        "model": model,
        "precision": precision,
        "steps": n,
        "s_per_step": step,
        "components": [{"name": k, "s": v, "share": v / step} for k, v in ranked],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sam2.1-tiny-arch")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--model-root", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="profile_engine_") as tmp:
        root = args.model_root or Path(tmp)
        row = profile(model=args.model, precision=args.precision, steps=args.steps, model_root=root)
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
