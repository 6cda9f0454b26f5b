"""The SAM 2 speed benchmark's per-frame trace (used for long memory runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks.bench_sam2_speed import read_trace, run_case


def test_trace_records_every_frame_and_reads_back(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    case = {
        "runner": "engine",
        "model": "random-tiny",
        "objects": 2,
        "frames": 3,
        "size": "480p",
        "trace": str(trace),
    }
    result = run_case(case, tmp_path / "models")
    rows = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [row["frame"] for row in rows] == [0, 1, 2, 3]
    assert all(row["rss_mib"] > 100 for row in rows)  # torch and a model are loaded
    peaks = [row["peak_rss_mib"] for row in rows]
    assert peaks == sorted(peaks) and peaks[-1] > 100
    summary = read_trace(case)
    assert summary["frames_done"] == 4
    assert summary["peak_rss_mib_per_frame"] == result["peak_rss_mib_per_frame"]
    assert summary["per_frame"] == pytest.approx(result["per_frame"])
    # a run stopped mid-way still reads back, up to its last whole line
    trace.write_text("\n".join(json.dumps(row) for row in rows[:2]) + "\n")
    assert read_trace(case)["frames_done"] == 2
    trace.write_text("")
    with pytest.raises(ValueError, match="no frames"):
        read_trace(case)
