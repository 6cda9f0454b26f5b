"""The score-product kernel benchmark: every kernel computes the same product."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from benchmarks.bench_score_kernels import KERNELS, main, measure


def test_kernels_agree_with_float64_within_their_precision() -> None:
    threads = torch.get_num_threads()
    result = measure(queries=64, keys=300, channels=32, reps=1)
    assert torch.get_num_threads() == threads  # restored after the single-thread run
    rows = result["kernels"]
    assert set(rows) == set(KERNELS)
    assert rows["float32"]["rel_error"] < 1e-5
    # bf16 keeps 8 significant bits, int8 about 7: errors well above fp32's, below 5 %
    assert 1e-4 < rows["bfloat16"]["rel_error"] < 2e-2
    assert 1e-4 < rows["int8"]["rel_error"] < 5e-2
    assert rows["int8_product"]["rel_error"] == pytest.approx(rows["int8"]["rel_error"], rel=1e-3)
    for row in rows.values():
        assert row["cpu_ms"] > 0
        assert row["speedup_vs_fp32"] == pytest.approx(rows["float32"]["cpu_ms"] / row["cpu_ms"])


def test_main_writes_json_with_the_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import benchmarks.bench_score_kernels as bench

    monkeypatch.setattr(
        bench, "measure", lambda reps: measure(queries=8, keys=16, channels=8, reps=reps)
    )
    out = tmp_path / "kernels.json"
    assert main(["--out", str(out), "--reps", "1"]) == 0
    data = json.loads(out.read_text())
    assert data["shape"] == [8, 16, 8] and "cpu" in json.dumps(data["machine"]).lower()
    # a CPU's name does not tell whether bf16 products are native, which decides "auto"
    assert isinstance(data["machine"]["bf16_native"], bool)
    assert set(data["machine"]["cpu_flags"]) <= {
        "avx2",
        "avx512f",
        "avx512_bf16",
        "avx512_vnni",
        "amx_bf16",
        "amx_tile",
    }


def test_rejects_empty_shapes() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        measure(queries=0)
