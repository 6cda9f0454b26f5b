"""Speed, peak memory and click latency of the SAM 2 engine.

Usage::

    python -m benchmarks.bench_engine --quick      # random-tiny + sam2.1-tiny architecture,
                                                   # 480p, 1 object, 10 frames
    python -m benchmarks.bench_engine --full       # models x {480p, 1080p} x {1, 5} objects
                                                   # x {50, 500} frames
    python -m benchmarks.bench_engine --memory     # random-tiny, 480p, 50 / 200 / 1000 frames

Every case runs in a fresh subprocess so that its peak RSS is its own. Real
architectures use random weights (no download needed): a transformers-format
folder is written once to a temporary directory and loaded through the public
model-folder path of the engine. Frames are synthesised lazily (moving disks), so
a 500-frame 1080p video is never held in memory.

Writes ``benchmarks/results/bench_engine_{quick,full,memory}.json``
with the machine description, and, per case: seconds per propagated frame (mean
and steady state), peak RSS, and click latency (cold: the frame must be encoded;
warm: the frame was prefetched, decoder only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "LazyDisks",
    "machine",
    "main",
    "peak_rss_mib",
    "rss_mib",
    "run_case",
    "thread_cpu_times",
]

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = {"480p": (480, 640), "1080p": (1080, 1920)}


class LazyDisks:
    """A synthetic ``(t, y, x, 3)`` uint8 video whose frames are drawn on demand."""

    def __init__(self, n_frames: int, shape: tuple[int, int], n_objects: int) -> None:
        self.shape = (n_frames, shape[0], shape[1], 3)
        self.dtype = np.dtype(np.uint8)
        rng = np.random.default_rng(0)
        h, w = shape
        self.radius = max(8.0, min(h, w) / 20)
        self.starts = rng.uniform([0.2 * h, 0.2 * w], [0.8 * h, 0.8 * w], (n_objects, 2))
        self.velocity = rng.uniform(-2.0, 2.0, (n_objects, 2))

    def centre(self, t: int, k: int) -> tuple[float, float]:
        """Centre ``(y, x)`` of disk ``k`` on frame ``t`` (bouncing inside the frame)."""
        h, w = self.shape[1:3]
        y, x = self.starts[k] + self.velocity[k] * t
        y = abs((y - 0.1 * h) % (1.6 * h) - 0.8 * h) + 0.1 * h
        x = abs((x - 0.1 * w) % (1.6 * w) - 0.8 * w) + 0.1 * w
        return float(y), float(x)

    def __getitem__(self, t: int) -> np.ndarray:
        h, w = self.shape[1:3]
        rng = np.random.default_rng(int(t))
        img = rng.normal(40.0, 8.0, (h, w, 3))
        yy, xx = np.ogrid[:h, :w]
        for k in range(len(self.starts)):
            cy, cx = self.centre(int(t), k)
            disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= self.radius**2
            img[disk] = (200.0, 160.0 - 20 * k, 60.0 + 30 * k)
        return np.clip(img, 0, 255).astype(np.uint8)


def rss_mib() -> float:
    """Current resident memory of this process, in MiB (the engine's reader, else psutil)."""
    from napari_sam2v.engines.heap import resident_mib

    rss = resident_mib()
    if rss is None:  # no /proc (macOS, Windows)
        import psutil

        rss = psutil.Process().memory_info().rss / 2**20
    return rss


def thread_cpu_times(call: Callable[[], Any], reps: int) -> tuple[list[float], Any]:
    """CPU seconds of the calling thread for ``reps`` calls, after one warm-up call.

    Thread CPU time (``time.thread_time``) is barely changed by other processes on the
    machine, where wall-clock times move by 2-3x.

    Returns
    -------
    times : list of float
        Seconds per timed call.
    output
        What the last timed call returned.
    """
    out = call()  # warm-up
    times = []
    for _ in range(reps):
        start = time.thread_time()
        out = call()
        times.append(time.thread_time() - start)
    return times, out


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


#: CPU features that decide the speed of the SAM 2 kernels (bf16 and int8 products).
_VECTOR_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")


def machine() -> dict[str, Any]:
    """Describe the machine (CPU, cores, GPU, library versions)."""
    import torch
    import transformers

    from napari_sam2v.engines.sam2.fastpath import bf16_matmul_supported

    cpu = platform.processor() or platform.machine()
    flags: list[str] = []
    named = False
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not named:
                cpu, named = line.split(":", 1)[1].strip(), True
            elif line.startswith("flags") and not flags:
                flags = [f for f in line.split(":", 1)[1].split() if f in _VECTOR_FLAGS]
    except OSError:
        pass
    return {
        "cpu": cpu,
        # One "AMD EPYC" name covers CPUs with and without native bf16 products, which
        # decide what precision="auto" runs (mixed or float32): record both.
        "cpu_flags": flags,
        "bf16_native": bf16_matmul_supported(torch.device("cpu")),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "note": "shared machine: other jobs were running while measured",
    }


def _random_model_folder(name: str, root: Path) -> Path:
    """Write a random-weight transformers folder of a real architecture (cached in root).

    ``name`` is ``"sam2.1-<size>-arch"`` (``tiny``, ``small``, ``base-plus``, ``large``)
    or ``"edgetam-arch"``.
    """
    import torch

    folder = root / name
    if (folder / "config.json").is_file():
        return folder
    from napari_sam2v.engines.sam2.configs import _VARIANTS, sam2_video_config

    variants = {f"sam2.1-{v.name}-arch": v for v in _VARIANTS}
    if name in variants:
        from transformers import Sam2VideoModel

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = Sam2VideoModel(sam2_video_config(variants[name], sam21=True))
    elif name == "edgetam-arch":
        from transformers import EdgeTamVideoConfig, EdgeTamVideoModel

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = EdgeTamVideoModel(EdgeTamVideoConfig())
    else:
        raise ValueError(f"unknown benchmark model {name!r}")
    model.save_pretrained(folder)
    return folder


def run_case(case: dict[str, Any], model_root: Path) -> dict[str, Any]:
    """Run one case in this process and return its measurements."""
    import torch

    from napari_sam2v.engines.sam2 import Sam2Engine
    from napari_sam2v.prompts import Prompt

    warnings.simplefilter("ignore")
    name = case["model"]
    model = name if name == "random-tiny" else str(_random_model_folder(name, model_root))
    threads = case.get("threads")
    engine = Sam2Engine(
        model=model,
        device=case["device"],
        precision=case.get("precision", "float32"),
        num_threads=threads,
        progress=False,
    )
    video = LazyDisks(case["frames"], SIZES[case["size"]], case["objects"])
    engine.set_video(video)

    def prompt(frame: int, k: int) -> Prompt:
        cy, cx = video.centre(frame, k)
        return Prompt(frame=frame, object_id=k + 1, points=[[cx, cy]])

    t0 = time.perf_counter()
    engine.add_prompt(prompt(0, 0))
    cold = time.perf_counter() - t0
    warm = []
    for k in range(1, case["objects"]):
        t0 = time.perf_counter()
        engine.add_prompt(prompt(0, k))
        warm.append(time.perf_counter() - t0)
    prefetched = []
    for frame in (1, 2, 3):
        engine.prefetch(frame)
        t0 = time.perf_counter()
        engine.add_prompt(prompt(frame, 0))
        prefetched.append(time.perf_counter() - t0)
        engine.clear_frame(frame, object_id=1)
    for _ in range(3):  # repeated clicks on the same (encoded) frame
        t0 = time.perf_counter()
        engine.add_prompt(prompt(0, 0))
        warm.append(time.perf_counter() - t0)

    per_frame = []
    t0 = time.perf_counter()
    for _ in engine.propagate():
        now = time.perf_counter()
        per_frame.append(now - t0)
        t0 = now
    steps = per_frame[1:] or per_frame  # the first frame is the prompted one (no work)
    half = steps[len(steps) // 2 :]
    peak = peak_rss_mib()
    engine_threads = engine.info.settings["num_threads"] or torch.get_num_threads()
    engine.close()
    return {
        **case,
        "s_per_frame": statistics.fmean(steps),
        "s_per_frame_steady": statistics.fmean(half),
        "fps": 1.0 / statistics.fmean(steps),
        "peak_rss_mib": peak,
        "click_cold_s": cold,
        "click_warm_s_median": statistics.median(warm),
        "click_warm_s_max": max(warm),
        "click_prefetched_s_median": statistics.median(prefetched),
        "threads": engine_threads,
    }


def _cases(mode: str, device: str, threads: int | None) -> list[dict[str, Any]]:
    if mode == "quick":
        models = ["random-tiny", "sam2.1-tiny-arch"]
        grid = [("480p", 1, 10)]
    elif mode == "memory":
        models = ["random-tiny"]
        grid = [("480p", 1, n) for n in (50, 200, 1000)]
    else:
        models = ["random-tiny", "sam2.1-tiny-arch", "edgetam-arch"]
        grid = [(s, o, f) for s in SIZES for o in (1, 5) for f in (50, 500)]
    return [
        {"model": m, "size": s, "objects": o, "frames": f, "device": device, "threads": threads}
        for m in models
        for s, o, f in grid
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="two small cases (default)")
    mode.add_argument("--full", action="store_true", help="the full matrix (hours on a CPU)")
    mode.add_argument(
        "--memory", action="store_true", help="peak RSS of random-tiny on 50, 200, 1000 frames"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch default)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--model-root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.case:  # child process: one case, JSON on stdout
        print(json.dumps(run_case(json.loads(args.case), args.model_root)))
        return 0

    name = "full" if args.full else "memory" if args.memory else "quick"
    out = args.out or RESULTS / f"bench_engine_{name}.json"
    report: dict[str, Any] = {
        "machine": machine(),
        "mode": name,
        "cases": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench_engine_") as tmp:
        for case in _cases(name, args.device, args.threads):
            cmd = [sys.executable, "-m", "benchmarks.bench_engine", "--case", json.dumps(case)]
            cmd += ["--model-root", tmp]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode == 0:
                row = json.loads(proc.stdout.strip().splitlines()[-1])
            else:
                tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                row = {**case, "error": tail}
            report["cases"].append(row)
            print(json.dumps(row), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
