"""Batch throughput on a LocalCluster: videos per minute with 1 and 2 workers.

Runs ``napari_sam2v.batch.run_batch`` on a manifest built from the bundled samples
(the ``reef`` mp4 and the ``cells`` TIFF, alternating, each row its own output), once
per worker count, each time into a fresh output folder, and writes JSON::

    .venv/bin/python benchmarks/bench_batch.py --videos 8 --workers 1 2 \\
        --out benchmarks/results/bench_batch.json

Wall time includes starting the LocalCluster and each worker's first import and
engine build (a real batch pays these once), so short batches understate the
steady-state rate; ``per_video_s`` gives the time of each video inside its task.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from napari_sam2v import __version__
from napari_sam2v.batch import read_manifest, run_batch
from napari_sam2v.samples import load_cells, load_reef


def write_manifest(folder: Path, n_videos: int) -> Path:
    """A manifest alternating the reef and cells samples, ``n_videos`` rows."""
    reef, cells = load_reef(), load_cells()
    rows = ["video,prompts,pixel_size,unit,frame_interval,time_unit,name"]
    for i in range(n_videos):
        if i % 2 == 0:
            rows.append(f"{reef.video_path},{reef.prompts_path},,,,,reef_{i:03d}")
        else:
            cal = cells.calibration
            rows.append(
                f"{cells.video_path},{cells.prompts_path},{cal.pixel_size},{cal.unit},"
                f"{cal.frame_interval},{cal.time_unit},cells_{i:03d}"
            )
    path = folder / "manifest.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def run_once(manifest: Path, workers: int, engine: str, model: str | None) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"bench_batch_{workers}w_"))
    load_before = os.getloadavg()[0]
    try:
        begin = time.perf_counter()
        report = run_batch(
            read_manifest(manifest), out, workers=workers, engine=engine, model=model, device="cpu"
        )
        wall = time.perf_counter() - begin
    finally:
        shutil.rmtree(out, ignore_errors=True)
    per_video = [o.seconds.get("total", 0.0) for o in report.succeeded]
    return {
        "workers": workers,
        "videos": len(report.outcomes),
        "done": len(report.succeeded),
        "failed": [f"{o.name}: {o.error}" for o in report.failed],
        "wall_s": round(wall, 2),
        "videos_per_minute": round(60.0 * len(report.succeeded) / wall, 2),
        "per_video_s": {
            "median": round(statistics.median(per_video), 2) if per_video else None,
            "min": round(min(per_video), 2) if per_video else None,
            "max": round(max(per_video), 2) if per_video else None,
        },
        "model_loads": report.model_loads,
        "load_average_1min": {
            "before": round(load_before, 2),
            "after": round(os.getloadavg()[0], 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--engine", default="classic", choices=("classic", "sam2"))
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/bench_batch.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_manifest(Path(tmp), args.videos)
        runs = []
        for workers in args.workers:
            run = run_once(manifest, workers, args.engine, args.model)
            print(json.dumps(run))
            runs.append(run)
    result = {
        "benchmark": "bench_batch",
        "package_version": __version__,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.machine(),
            "python": platform.python_version(),
            "note": "shared with other jobs while measured; no GPU",
        },
        "settings": {
            "engine": args.engine,
            "model": args.model,
            "videos": args.videos,
            "inputs": "alternating reef.mp4 (48 frames, 288x384 RGB) and "
            "t98g_phase_crop.tif (37 frames, 320x320 uint16)",
            "cluster": "LocalCluster on 127.0.0.1, 1 thread per worker process",
        },
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
