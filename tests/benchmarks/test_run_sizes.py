"""The ``sizes`` figure of ``benchmarks.run``: each SAM 2.1 size, plain against the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from benchmarks.bench_engine import _random_model_folder
from benchmarks.run import run_figure


def test_sizes_pairs_each_architecture_with_its_plain_run(tmp_path: Path, monkeypatch) -> None:
    calls: list[dict[str, Any]] = []
    shape = (4, 6)

    def fake_run(case: dict[str, Any], root: Path) -> dict[str, Any]:
        calls.append(case)
        mask = np.zeros(shape, bool)
        mask[:2, :3] = True
        if case["runner"] == "engine" and case["model"] == "sam2.1-large-arch":
            mask[2, 0] = True  # one more pixel: IoU 6 / 7 on that frame
        np.savez_compressed(case["masks"], **{"1": np.packbits(mask), "2": np.packbits(mask)})
        row = {**case, "s_per_frame_steady": 2.0 if case["runner"] == "plain" else 1.6}
        if case["runner"] == "engine":
            row["settings"] = {"precision": "float32"}
        return row

    monkeypatch.setattr("benchmarks.run._run", fake_run)
    rows = run_figure("sizes", quick=False, root=tmp_path, tmp=tmp_path)
    assert [(c["model"], c["runner"]) for c in calls] == [
        (f"sam2.1-{size}-arch", runner)
        for size in ("small", "base-plus", "large")
        for runner in ("plain", "engine")
    ]
    engines = [row for row in rows if row["runner"] == "engine"]
    assert all(row["precision"] == "auto" and row["precision_used"] == "float32" for row in engines)
    assert all(row["speedup_steady"] == pytest.approx(1.25) for row in engines)
    assert [row["agreement_vs_plain"]["iou_min"] for row in engines] == pytest.approx(
        [1.0, 1.0, 6 / 7]
    )
    assert run_figure("sizes", quick=True, root=tmp_path, tmp=tmp_path) == []


def test_an_engine_error_keeps_the_pair_without_agreement(tmp_path: Path, monkeypatch) -> None:
    def fake_run(case: dict[str, Any], root: Path) -> dict[str, Any]:
        if case["runner"] == "engine":
            return {**case, "error": "MemoryError"}
        return {**case, "s_per_frame_steady": 2.0}

    monkeypatch.setattr("benchmarks.run._run", fake_run)
    rows = run_figure("sizes", quick=False, root=tmp_path, tmp=tmp_path)
    assert len(rows) == 6
    assert all("agreement_vs_plain" not in row for row in rows)
    assert [row["error"] for row in rows if row["runner"] == "engine"] == ["MemoryError"] * 3


def test_unknown_benchmark_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown benchmark model 'sam2.1-huge-arch'"):
        _random_model_folder("sam2.1-huge-arch", tmp_path)
    assert not (tmp_path / "sam2.1-huge-arch").exists()
