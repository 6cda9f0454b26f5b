"""napari_sam2v.engines.sam2.hugepages: large CPU tensors use transparent huge pages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from napari_sam2v.engines.sam2 import hugepages


def _thp_mode() -> str:
    try:
        return Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return "[never]"


needs_thp = pytest.mark.skipif(
    sys.platform != "linux" or "[never]" in _thp_mode(),
    reason="needs Linux with transparent huge pages available",
)

# Page faults of allocating and writing a 64 MiB tensor after importing the engine package.
_PROBE = """
import json, resource
import napari_sam2v.engines.sam2
from napari_sam2v.engines.sam2.hugepages import huge_pages_requested
import torch

torch.ones(16 * 1024 * 1024)  # warm up the allocator
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
x = torch.ones(16 * 1024 * 1024)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"requested": huge_pages_requested(), "faults": faults, "sum": float(x.sum())}))
"""


def _probe(**env: str) -> dict[str, object]:
    environ = {k: v for k, v in os.environ.items() if k != hugepages.TORCH_THP_ENV}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**environ, **env},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@needs_thp
def test_importing_the_engine_package_turns_huge_pages_on() -> None:
    on = _probe()
    off = _probe(**{hugepages.HUGE_PAGES_ENV: "0"})
    assert on["requested"] is True and off["requested"] is False
    assert on["sum"] == off["sum"] == 16 * 1024 * 1024  # same values either way
    # 64 MiB is 16,384 pages of 4 KiB; with huge pages, 32 faults of 2 MiB
    assert off["faults"] > 10_000
    assert on["faults"] < 2_000


@needs_thp
def test_user_value_of_the_torch_switch_is_kept() -> None:
    result = _probe(**{hugepages.TORCH_THP_ENV: "0"})
    assert result["requested"] is False
    assert result["faults"] > 10_000


def test_nothing_is_set_without_kernel_support(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(hugepages.TORCH_THP_ENV, raising=False)
    never = tmp_path / "enabled"
    never.write_text("always madvise [never]\n")
    monkeypatch.setattr(hugepages, "_THP_MODE", never)
    assert hugepages.use_huge_pages() is False
    monkeypatch.setattr(hugepages, "_THP_MODE", tmp_path / "missing")
    assert hugepages.use_huge_pages() is False
    assert hugepages.TORCH_THP_ENV not in os.environ


def test_switch_is_set_when_supported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(hugepages.TORCH_THP_ENV, raising=False)
    monkeypatch.delenv(hugepages.HUGE_PAGES_ENV, raising=False)
    mode = tmp_path / "enabled"
    mode.write_text("always [madvise] never\n")
    monkeypatch.setattr(hugepages, "_THP_MODE", mode)
    monkeypatch.setattr(hugepages.sys, "platform", "linux")
    assert hugepages.use_huge_pages() is True
    assert os.environ[hugepages.TORCH_THP_ENV] == "1"
    monkeypatch.setenv(hugepages.HUGE_PAGES_ENV, "0")
    monkeypatch.delenv(hugepages.TORCH_THP_ENV)
    assert hugepages.use_huge_pages() is False
