"""Plot the SAM 2 CPU figures written by :mod:`benchmarks.run`.

Usage::

    python -m benchmarks.plot_sam2 benchmarks/results/sam2_cpu_full_speed.json \\
        benchmarks/results/sam2_cpu_full.json --out benchmarks/results/sam2_cpu.png

Left: seconds per frame against the frame index for every configuration of the
``speed`` figure, frame by frame the minimum over the repetitions (other jobs on a
shared machine only add time). Right: peak RSS against the number of frames
(``memory`` figure: one point per run, or the running peak after each frame where a
run recorded it, with the resident set after each frame dotted where a traced run
recorded that too; a row's ``label`` names its curves). Figures absent from the
inputs leave their panel empty.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "plot"]


def _label(row: dict[str, Any]) -> str:
    if row["runner"] == "plain":
        return "transformers session (plain)"
    label = f"engine {row.get('precision', 'float32')}"
    if row.get("memory_frames"):
        label += f", memory_frames={row['memory_frames']}"
    return label


def plot(reports: Sequence[dict[str, Any]], out: Path) -> Path:
    """Draw the two panels from ``benchmarks.run`` reports and save a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (speed, memory) = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True)
    for report in reports:
        curves: dict[str, list[list[float]]] = {}
        for row in report.get("figures", {}).get("speed", []):
            if "per_frame" in row:
                curves.setdefault(_label(row), []).append(row["per_frame"])
        for label, runs in curves.items():
            lowest = [min(values) for values in zip(*runs, strict=False)]
            speed.plot(range(1, len(lowest) + 1), lowest, marker="o", label=label)
        groups: dict[str, list[tuple[int, float]]] = {}
        for row in report.get("figures", {}).get("memory", []):
            trace = row.get("peak_rss_mib_per_frame")
            if trace:  # one run, its running peak after each frame
                label = row.get("label") or (
                    f"{row['model']} {row['size']}, {row['objects']} objects, one run"
                )
                (line,) = memory.plot(range(1, len(trace) + 1), trace, label=f"{label}: peak")
                current = row.get("rss_mib_per_frame")
                if current:  # the resident set after each frame, where it was recorded
                    memory.plot(
                        range(1, len(current) + 1),
                        current,
                        linestyle=":",
                        color=line.get_color(),
                        label=f"{label}: RSS after the frame",
                    )
            elif "peak_rss_mib" in row:
                key = f"{row['model']} {row['size']}, {row['objects']} objects"
                groups.setdefault(key, []).append((row["frames"], row["peak_rss_mib"]))
        for key, points in groups.items():
            points.sort()
            memory.plot(*zip(*points, strict=True), marker="o", label=key)
    speed.set(xlabel="frame after the prompt", ylabel="seconds per frame", ylim=(0, None))
    speed.set_title("SAM 2.1-tiny arch., 480x640, 1 object (min over repetitions)")
    memory.set(xlabel="frames propagated", ylabel="RSS (MiB)", xscale="log", ylim=(0, None))
    memory.set_title("memory vs video length")
    if speed.lines:
        speed.legend(fontsize=8)
    if memory.lines:
        memory.legend(fontsize=7, loc="lower left")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/sam2_cpu.png"))
    args = parser.parse_args(argv)
    reports = [json.loads(path.read_text()) for path in args.reports]
    print(plot(reports, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
