"""CPU time of one SAM 2.1-tiny step per precision level, robust to other jobs.

Usage::

    python -m benchmarks.bench_sam2_cpu_time [--reps 3] [--out PATH]

Wall-clock figures on a shared 2-core machine move by 2-3x with the load. This
benchmark instead runs torch on **one thread** and reads the calling thread's
CPU time (``time.thread_time``), which other processes barely change, for the
two parts that make up 95 % of a steady-state step:

* the image encoder on one 1024x1024 input;
* the memory attention on the steady-state inputs (4096 queries, 7 memory
  frames + 36 pointer tokens = 28,708 keys) **captured from a real engine run**
  of the SAM 2.1-tiny architecture with random weights, so attention patterns
  are those of the model, not of random memory.

Each level (``plain`` transformers, then the engine's ``float32``, ``mixed`` and
``fast`` patches) is timed
``--reps`` times in a fresh subprocess, and its outputs are compared with the
fp32 model's. The reference drift is the change of the fp32 memory-attention
output when the memory is scaled by 1.05 (the sensitivity yardstick of the
tests). The JSON gives the minimum CPU seconds per part and the relative errors.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.bench_engine import (
    SIZES,
    LazyDisks,
    _random_model_folder,
    machine,
    thread_cpu_times,
)

__all__ = ["capture", "main", "measure_level"]

RESULTS = Path(__file__).resolve().parent / "results"
#: "plain" is transformers' model untouched: the baseline
LEVELS = ("plain", "float32", "mixed", "fast")


def capture(model_root: Path, out: Path) -> None:
    """Run the engine 9 frames and save the last memory-attention inputs to ``out``."""
    import torch

    from napari_sam2v.engines.sam2 import Sam2Engine
    from napari_sam2v.prompts import Prompt

    folder = _random_model_folder("sam2.1-tiny-arch", model_root)
    engine = Sam2Engine(model=str(folder), device="cpu", precision="float32", progress=False)
    video = LazyDisks(10, SIZES["480p"], 1)
    engine.set_video(video)
    captured: dict[str, Any] = {}

    def hook(_module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        captured.update({k: v.clone() if torch.is_tensor(v) else v for k, v in kwargs.items()})

    engine._model.memory_attention.register_forward_pre_hook(hook, with_kwargs=True)
    cy, cx = video.centre(0, 0)
    engine.add_prompt(Prompt(frame=0, object_id=1, points=[[cx, cy]]))
    for _ in engine.propagate():
        pass
    engine.close()
    torch.save(captured, out)


def _relative(a: Any, b: Any) -> float:
    return float((a - b).abs().max() / b.abs().max())


def measure_level(level: str, *, model_root: Path, inputs: Path, reps: int) -> dict[str, Any]:
    """Time one precision level in this process (torch on one thread)."""
    import torch
    from transformers import Sam2VideoModel

    from napari_sam2v.engines.sam2.fastpath import enable_fast_path
    from napari_sam2v.engines.sam2.hiera import install_exact_encoder

    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    kwargs = torch.load(inputs)
    folder = _random_model_folder("sam2.1-tiny-arch", model_root)
    model = Sam2VideoModel.from_pretrained(folder).eval()
    pixels = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(0))

    def encoder() -> torch.Tensor:
        return model.get_image_features(pixels).fpn_hidden_states[-1]

    def attention() -> torch.Tensor:
        return model.memory_attention(**kwargs)

    with torch.inference_mode():
        ref_encoder, ref_attention = encoder(), attention()
        scaled = model.memory_attention(**{**kwargs, "memory": kwargs["memory"] * 1.05})
        if level != "plain":
            install_exact_encoder(model)
        if level in ("mixed", "fast"):
            enable_fast_path(model, level)
        row: dict[str, Any] = {"level": level}
        for name, part, ref in (
            ("encoder", encoder, ref_encoder),
            ("memory_attention", attention, ref_attention),
        ):
            times, out = thread_cpu_times(part, reps)
            row[f"{name}_cpu_s"] = min(times)
            row[f"{name}_cpu_s_all"] = times
            row[f"{name}_rel_err"] = _relative(out, ref)
        row["memory_x1.05_rel_change"] = _relative(scaled, ref_attention)
    row["step_cpu_s"] = row["encoder_cpu_s"] + row["memory_attention_cpu_s"]
    return row


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "sam2_cpu_time.json")
    parser.add_argument("--level", choices=LEVELS, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--inputs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.level:  # one level, in a subprocess of the run below
        row = measure_level(args.level, model_root=args.root, inputs=args.inputs, reps=args.reps)
        print(json.dumps(row))
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="sam2_cpu_time_") as tmp:
        root, inputs = Path(tmp) / "models", Path(tmp) / "inputs.pt"
        root.mkdir()
        capture(root, inputs)
        for level in LEVELS:
            cmd = [sys.executable, "-m", "benchmarks.bench_sam2_cpu_time", "--level", level]
            cmd += ["--root", str(root), "--inputs", str(inputs), "--reps", str(args.reps)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps({k: v for k, v in rows[-1].items() if not k.endswith("_all")}))
    base = rows[0]["step_cpu_s"]
    for row in rows:
        row["speedup_vs_plain"] = base / row["step_cpu_s"]
    report = {"machine": machine(), "torch_threads": 1, "reps": args.reps, "levels": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
