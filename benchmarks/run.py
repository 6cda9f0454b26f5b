"""Run the SAM 2 CPU performance figures of ``docs/performance.md`` and write JSON.

Usage::

    python -m benchmarks.run --quick          # minutes: random-tiny + one real-size step
    python -m benchmarks.run --full           # every figure: over an hour on 2 cores
    python -m benchmarks.run --full --only speed memory

Figures (``--only`` picks some):

``speed``
    SAM 2.1-tiny architecture (random weights), 480x640, 1 object: transformers'
    plain session vs the engine in ``float32``, ``mixed``, ``fast`` (opt-in) and
    ``mixed`` with ``memory_frames=3`` (opt-in). Runs are interleaved and repeated; per-frame
    times, steady-state medians (full memory bank), click latency and the IoU of
    every frame against the plain run.
``levers``
    Memory attention and image encoder variants timed one at a time on
    steady-state inputs (:mod:`benchmarks.bench_sam2_levers`).
``objects``
    Engine ``mixed``, 1, 3 and 10 objects (random-tiny), and the same with the real
    architecture over 10 frames (full mode).
``threads``
    Engine ``mixed`` with 1 and 2 CPU threads.
``memory``
    Peak RSS at 1080p with 3 objects as the video grows (random-tiny), and one
    real-size run.
``edgetam``
    EdgeTAM architecture: plain session vs engine.
``sizes``
    The other SAM 2.1 sizes (small, base-plus, large architectures, random
    weights), 480x640, 1 object, 12 frames: plain session vs the engine at its
    default precision (``auto``), with the masks' IoU against the plain run.
``profile``
    Wall time per model component for one steady-state step
    (:mod:`benchmarks.profile_engine`).

Every case runs in a fresh subprocess, so its peak RSS is its own. Output:
``benchmarks/results/sam2_cpu_{quick,full}.json`` with the machine description.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.bench_engine import machine
from benchmarks.bench_sam2_speed import FULL_BANK, mask_agreement

__all__ = ["FIGURES", "main", "run_figure"]

RESULTS = Path(__file__).resolve().parent / "results"
FIGURES = ("speed", "levers", "objects", "threads", "memory", "edgetam", "sizes", "profile")
SIZES = ("small", "base-plus", "large")
TINY = "sam2.1-tiny-arch"


def _run(case: dict[str, Any], root: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_sam2_speed", json.dumps(case), str(root)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {**case, "error": tail}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _speed(quick: bool, root: Path, tmp: Path) -> list[dict[str, Any]]:
    model = "random-tiny" if quick else TINY
    frames, reps = (10, 1) if quick else (12, 2)
    variants = [
        {"runner": "plain"},
        {"runner": "engine", "precision": "float32", "clicks": 20},
        {"runner": "engine", "precision": "mixed", "clicks": 20},
        {"runner": "engine", "precision": "fast"},
        {"runner": "engine", "precision": "mixed", "memory_frames": 3},
    ]
    rows = []
    for rep in range(reps):
        baseline = None
        for k, variant in enumerate(variants):
            case = {"model": model, "size": "480p", "objects": 1, "frames": frames, **variant}
            case["masks"] = str(tmp / f"speed_{rep}_{k}.npz")
            row = _run(case, root)
            row["rep"] = rep
            if variant["runner"] == "plain":
                baseline = case["masks"]
            elif baseline is not None and "error" not in row:
                row["agreement_vs_plain"] = mask_agreement(baseline, case["masks"])
            rows.append(row)
            print(json.dumps(_brief(row)), flush=True)
    return rows


def _grid(cases: list[dict[str, Any]], root: Path) -> list[dict[str, Any]]:
    rows = []
    for case in cases:
        row = _run(case, root)
        rows.append(row)
        print(json.dumps(_brief(row)), flush=True)
    return rows


def run_figure(name: str, *, quick: bool, root: Path, tmp: Path) -> list[dict[str, Any]]:
    """Run one figure's cases (each in a subprocess) and return their rows."""
    model = "random-tiny" if quick else TINY
    base = {"runner": "engine", "precision": "mixed", "size": "480p"}
    if name == "speed":
        return _speed(quick, root, tmp)
    if name == "objects":
        # random-tiny: the full curve with a full memory bank; real architecture
        # (full mode): 10 frames, so the steady state (frames 8+) is reached
        cases = [
            {**base, "model": "random-tiny", "objects": n, "frames": 12 if quick else 20}
            for n in (1, 3, 10)
        ]
        if not quick:
            cases += [{**base, "model": TINY, "objects": n, "frames": 10} for n in (1, 3, 10)]
        return _grid(cases, root)
    if name == "threads":
        frames = 4 if quick else 9
        return _grid(
            [
                {**base, "model": model, "objects": 1, "frames": frames, "threads": n}
                for n in (1, 2)
            ],
            root,
        )
    if name == "memory":
        lengths = (50, 100) if quick else (100, 300, 1000)
        cases = [
            {**base, "model": "random-tiny", "size": "1080p", "objects": 3, "frames": n}
            for n in lengths
        ]
        if not quick:
            cases += [
                {**base, "model": TINY, "size": "1080p", "objects": 3, "frames": n}
                for n in (10, 25)
            ]
        return _grid(cases, root)
    if name == "edgetam":
        if quick:
            return []
        cases = [
            {"runner": r, "model": "edgetam-arch", "size": "480p", "objects": 1, "frames": 10}
            for r in ("plain", "engine")
        ]
        return _grid(cases, root)
    if name == "sizes":
        if quick:
            return []
        rows = []
        for size in SIZES:
            pair = [
                {
                    "runner": r,
                    "model": f"sam2.1-{size}-arch",
                    "size": "480p",
                    "objects": 1,
                    "frames": 12,
                    "masks": str(tmp / f"sizes_{size}_{r}.npz"),
                }
                for r in ("plain", "engine")
            ]
            pair[1]["precision"] = "auto"
            plain, engine = (_run(case, root) for case in pair)
            if "error" not in engine:
                engine["precision_used"] = engine["settings"]["precision"]
            if "error" not in plain and "error" not in engine:
                engine["agreement_vs_plain"] = mask_agreement(pair[0]["masks"], pair[1]["masks"])
                engine["speedup_steady"] = (
                    plain["s_per_frame_steady"] / engine["s_per_frame_steady"]
                )
            for row in (plain, engine):
                rows.append(row)
                print(json.dumps(_brief(row)), flush=True)
        return rows
    if name == "levers":
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.bench_sam2_levers",
            "--reps",
            "1" if quick else "3",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            return [{"error": proc.stderr.strip()[-300:]}]
        rows = json.loads(proc.stdout.strip().splitlines()[-1])["rows"]
        for row in rows:
            print(json.dumps(row), flush=True)
        return rows
    if name == "profile":
        cmd = [sys.executable, "-m", "benchmarks.profile_engine", "--model", model]
        cmd += ["--model-root", str(root)]
        rows = []
        for precision in ("float32", "mixed", "fast"):
            proc = subprocess.run(
                [*cmd, "--precision", precision], capture_output=True, text=True, check=False
            )
            if proc.returncode == 0:
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            else:
                rows.append({"precision": precision, "error": proc.stderr.strip()[-300:]})
            print(json.dumps(rows[-1]), flush=True)
        return rows
    raise ValueError(f"unknown figure {name!r}; choose from {FIGURES}")


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("per_frame", "settings", "masks")}


def _steady_frames(rows: list[dict[str, Any]]) -> list[float]:
    return [t for row in rows for t in row["per_frame"][FULL_BANK:]]


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per configuration of the ``speed`` figure: steady-state seconds per frame.

    The per-frame times of every repetition with a full memory bank are pooled.
    ``median`` is their median; ``p25`` (lower quartile) and ``min`` are less
    affected by other jobs on a shared machine, which can only add time.
    Speed-ups are given for each statistic against the plain session.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if "error" in row:
            continue
        label = row["runner"]
        if row["runner"] == "engine":
            label += f"-{row['precision']}"
        if row.get("memory_frames"):
            label += f"-mem{row['memory_frames']}"
        groups.setdefault(label, []).append(row)

    def stats(items: list[dict[str, Any]]) -> dict[str, float]:
        times = _steady_frames(items)
        return {
            "median": statistics.median(times),
            "p25": statistics.quantiles(times, n=4)[0] if len(times) > 1 else times[0],
            "min": min(times),
        }

    ref = stats(groups["plain"]) if "plain" in groups else None
    out = []
    for label, items in groups.items():
        entry: dict[str, Any] = {"config": label, "runs": len(items)}
        for key, value in stats(items).items():
            entry[f"s_per_frame_{key}"] = value
            if ref:
                entry[f"speedup_{key}"] = ref[key] / value
        ious = [r["agreement_vs_plain"]["iou_min"] for r in items if "agreement_vs_plain" in r]
        if ious:
            entry["iou_min_vs_plain"] = min(ious)
        p95 = [r["click_s_p95"] for r in items if "click_s_p95" in r]
        if p95:
            entry["click_s_p95"] = max(p95)
        out.append(entry)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a few minutes (default)")
    mode.add_argument("--full", action="store_true", help="every figure (over an hour on 2 cores)")
    parser.add_argument("--only", nargs="+", choices=FIGURES, help="run only these figures")
    parser.add_argument("--out", type=Path, default=None, help="JSON output path")
    args = parser.parse_args(argv)

    name = "full" if args.full else "quick"
    out = args.out or RESULTS / f"sam2_cpu_{name}.json"
    report: dict[str, Any] = {"machine": machine(), "mode": name, "figures": {}}
    with tempfile.TemporaryDirectory(prefix="sam2_cpu_") as tmp:
        root = Path(tmp) / "models"
        root.mkdir()
        for figure in args.only or FIGURES:
            print(f"== {figure}", flush=True)
            rows = run_figure(figure, quick=not args.full, root=root, tmp=Path(tmp))
            report["figures"][figure] = rows
            if figure == "speed":
                report["speed_summary"] = summarise(rows)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
