"""Benchmark the result-store writer on 1080p labels.

Measures

* the writer's own throughput (frames/s composed, compressed, written, fsynced and
  journalled) with an engine that never waits, with and without fsync;
* the time an engine producing frames at a fixed rate waits on the writer
  (back-pressure), as a fraction of its propagation time (goal: < 5 %).

The engine is simulated (``time.sleep`` per frame, like a GPU-bound SAM 2) and yields
five moving disc masks of ~80 px radius per 1920x1080 frame.

Usage::

    python benchmarks/bench_writer.py [--frames 150] [--out benchmarks/results/bench_writer.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_sam2v.engines.base import FrameResult, ObjectScore
from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.prompts import Prompt
from napari_sam2v.store import ResultStore

HEIGHT, WIDTH = 1080, 1920
N_OBJECTS = 5


def make_results(n_frames: int) -> list[FrameResult]:
    """Pre-computed frame results so that mask generation is not timed."""
    yy, xx = np.ogrid[:HEIGHT, :WIDTH]
    out = []
    for t in range(n_frames):
        masks, scores = {}, {}
        for oid in range(1, N_OBJECTS + 1):
            cy = 150 + 150 * oid + 20 * np.sin(t / 10 + oid)
            cx = (200 + 300 * oid + 7 * t) % WIDTH
            masks[oid] = (yy - cy) ** 2 + (xx - cx) ** 2 <= 80**2
            scores[oid] = ObjectScore(3.0 + oid / 10, 0.9)
        out.append(FrameResult(t, masks, scores))
    return out


def _prompts() -> Prompts:
    return Prompts([], [Prompt(0, oid, points=[[10 * oid, 10]]) for oid in range(1, 6)])


def run(
    results: list[FrameResult], folder: Path, *, engine_fps: float | None, fsync: bool, name: str
) -> dict[str, float]:
    """Feed ``results`` through a background writer; return timings."""
    store = ResultStore.create(
        folder / f"{name}.zarr",
        n_frames=len(results),
        frame_shape=(HEIGHT, WIDTH),
        prompts=_prompts(),
        fsync=fsync,
    )
    period = 0.0 if engine_fps is None else 1.0 / engine_fps
    start = time.perf_counter()
    with store.writer(queue_size=4) as writer:
        for result in results:
            if period:
                time.sleep(period)
            writer.put(result)
        produced = time.perf_counter()
    finished = time.perf_counter()
    store.close()
    assert store.frames_done.all()
    propagation = produced - start
    return {
        "engine_fps": engine_fps,
        "fsync": fsync,
        "frames": len(results),
        "total_s": round(finished - start, 3),
        "writer_fps": round(len(results) / writer.busy_s, 1),
        "end_to_end_fps": round(len(results) / (finished - start), 1),
        "engine_wait_s": round(writer.wait_s, 4),
        "engine_wait_fraction": round(writer.wait_s / propagation, 4),
        "store_mb": round(
            sum(f.stat().st_size for f in (folder / f"{name}.zarr").rglob("*") if f.is_file())
            / 1e6,
            2,
        ),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "bench_writer.json"
    )
    args = parser.parse_args()
    results = make_results(args.frames)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        runs.append(run(results, folder, engine_fps=None, fsync=True, name="max-fsync"))
        runs.append(run(results, folder, engine_fps=None, fsync=False, name="max-nofsync"))
        for fps in (10.0, 25.0, 50.0):
            runs.append(run(results, folder, engine_fps=fps, fsync=True, name=f"engine{fps:g}"))
    report = {
        "benchmark": "result-store writer, 1920x1080 uint16 labels, 5 objects",
        "machine": f"{_cpu_name()} ({platform.machine()}), {os.cpu_count()} CPU cores, no GPU, "
        "shared with other jobs",
        "date": time.strftime("%Y-%m-%d"),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    for r in runs:
        print(r)


if __name__ == "__main__":
    main()
