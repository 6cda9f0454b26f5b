"""Speed of the classic engine: 512 x 512 frames, 10 moving objects.

Usage::

    python -m benchmarks.bench_classic [--frames 100] [--size 512] [--objects 10]

Writes ``benchmarks/results/bench_classic.json`` with the median (over
``--repeat`` runs) frames per second of
propagation (prompting and scoring excluded; reading and normalising the in-memory frames
and building the full-frame masks of every :class:`FrameResult` included)
and the mean J of the tracked objects against the synthetic ground truth.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from napari_sam2v.engines import create_engine

__all__ = ["main", "moving_disks", "run"]

RESULTS = Path(__file__).resolve().parent / "results" / "bench_classic.json"


def moving_disks(
    n_frames: int, size: int, n_objects: int, *, radius: float = 14.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Bright noisy disks drifting on a dark noisy background (uint16, with ground truth)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    grid = int(np.ceil(np.sqrt(n_objects)))
    step = size / grid
    starts = [((i // grid + 0.5) * step, (i % grid + 0.5) * step) for i in range(n_objects)]
    velocities = rng.uniform(-1.5, 1.5, (n_objects, 2))
    frames = np.empty((n_frames, size, size), np.uint16)
    labels = np.zeros((n_frames, size, size), np.uint16)
    for t in range(n_frames):
        img = rng.normal(1000.0, 40.0, (size, size))
        for oid, ((y0, x0), (vy, vx)) in enumerate(zip(starts, velocities, strict=True), 1):
            disk = (yy - (y0 + vy * t)) ** 2 + (xx - (x0 + vx * t)) ** 2 <= radius**2
            img[disk] += 2000.0
            labels[t][disk] = oid
        frames[t] = np.clip(img, 0, 65535).astype(np.uint16)
    return frames, labels


def _propagate_once(frames: np.ndarray, labels: np.ndarray) -> tuple[float, float, float, float]:
    """Prompt and propagate once.

    Returns prompt seconds, propagate wall seconds, propagate CPU seconds of this
    process (less sensitive to other jobs on a shared machine) and mean J.
    """
    from benchmarks.accuracy import first_frame_prompts
    from benchmarks.metrics import jaccard

    engine = create_engine("classic")
    engine.set_video(frames)
    prompts = first_frame_prompts(labels)
    t0 = time.perf_counter()
    engine.add_prompts(prompts)
    prompt_s = time.perf_counter() - t0
    ious = []
    seconds = cpu = 0.0
    results = engine.propagate()
    while True:
        t0, c0 = time.perf_counter(), time.process_time()
        result = next(results, None)
        seconds += time.perf_counter() - t0
        cpu += time.process_time() - c0
        if result is None:
            break
        truth = labels[result.frame]
        ious.extend(jaccard(mask, truth == oid) for oid, mask in result.masks.items())
    engine.close()
    return prompt_s, seconds, cpu, float(np.mean(ious))


def run(
    n_frames: int = 100, size: int = 512, n_objects: int = 10, *, repeat: int = 3
) -> dict[str, object]:
    """Time prompting and propagation ``repeat`` times; return the median run's numbers."""
    frames, labels = moving_disks(n_frames, size, n_objects)
    runs = [_propagate_once(frames, labels) for _ in range(repeat)]
    all_fps = [n_frames / r[1] for r in runs]
    prompt_s, seconds, cpu, mean_j = sorted(runs, key=lambda r: r[1])[len(runs) // 2]
    best_cpu = min(r[2] for r in runs)
    return {
        "frames": n_frames,
        "frame_shape": [size, size],
        "objects": n_objects,
        "prompt_seconds": round(prompt_s, 4),
        "propagate_seconds": round(seconds, 3),
        "frames_per_second": round(n_frames / seconds, 1),
        "frames_per_second_all_runs": [round(v, 1) for v in all_fps],
        "cpu_frames_per_second": round(n_frames / best_cpu, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "ms_per_object_frame": round(1000 * seconds / (n_frames * n_objects), 3),
        "mean_J": round(mean_j, 4),
        "machine": (
            f"{platform.machine()} CPU, {os.cpu_count()} cores, no GPU, "
            "shared with other jobs while measured"
        ),
        "python": platform.python_version(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_classic")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--objects", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the median is reported")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = run(args.frames, args.size, args.objects, repeat=args.repeat)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
