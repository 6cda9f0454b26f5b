"""Giving free C-heap pages back to the system during long propagations."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from napari_sam2v.engines import heap
from napari_sam2v.engines.heap import HeapTrimmer

glibc = pytest.mark.skipif(heap._MALLOC_TRIM is None, reason="needs glibc's malloc_trim")

# In a fresh interpreter: keep freed memory in the heap (no mmap for these sizes, no
# automatic trimming of the heap's top), free 192 MiB, then trim.
_SCRIPT = textwrap.dedent(
    """
    import ctypes, resource
    from pathlib import Path
    import numpy as np
    from napari_sam2v.engines.heap import trim_heap

    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: never trim the top by itself
    libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: serve large blocks from the heap

    def rss():
        return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize()

    arrays = [np.ones(3 << 17) for _ in range(64)]  # 64 x 3 MiB, pages touched
    before = rss()
    del arrays
    freed = rss()
    released = trim_heap()
    print(before >> 20, freed >> 20, rss() >> 20, released)
    """
)


@glibc
def test_trim_returns_free_heap_pages_to_the_system() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=120, check=True
    )
    before, freed, trimmed, released = out.stdout.split()
    assert int(freed) > int(before) - 32  # freed, but still resident
    assert int(trimmed) < int(freed) - 150  # trimmed: most of the 192 MiB is gone
    assert released == "True"


def test_trimmer_trims_every_n_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(heap, "trim_heap", lambda: calls.append(1) or True)
    trimmer = HeapTrimmer(every=4, growth_mib=None)
    for _ in range(10):
        trimmer.frame_done()
    assert len(calls) == 2 and trimmer.trims == 2
    with pytest.raises(ValueError, match="at least 1"):
        HeapTrimmer(every=0)
    with pytest.raises(ValueError, match="positive"):
        HeapTrimmer(growth_mib=0)


def test_trimmer_trims_early_when_the_resident_set_grows(monkeypatch: pytest.MonkeyPatch) -> None:
    # resident set after: creation, then each frame, and after each trim
    sizes = iter([1000, 1050, 1120, 1140, 1010, 1100, 1200, 1100, 1150, 1250, 1300])
    monkeypatch.setattr(heap, "_MALLOC_TRIM", lambda pad: 1)
    monkeypatch.setattr(heap, "resident_mib", lambda: float(next(sizes)))
    monkeypatch.setattr(heap, "trim_heap", lambda: True)
    trimmer = HeapTrimmer(every=5, growth_mib=128)
    trimmed_at = []
    for frame in range(7):
        before = trimmer.trims
        trimmer.frame_done()
        if trimmer.trims > before:
            trimmed_at.append(frame)
    # frame 2: 1140 MiB is 140 over the floor of 1000, trim, the floor becomes 1010;
    # frame 4: 1200 is 190 over it, trim, floor 1100; frame 6: 1250 is 150 over it
    assert trimmed_at == [2, 4, 6]
    assert trimmer.trims == 3


def test_resident_mib_reads_this_process() -> None:
    rss = heap.resident_mib()
    if sys.platform.startswith("linux"):
        assert rss is not None and 10 < rss < 1 << 20


def test_without_malloc_trim_nothing_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_MALLOC_TRIM", None)
    assert heap.trim_heap() is False
    trimmer = HeapTrimmer(every=1)
    trimmer.frame_done()
    assert trimmer.trims == 1  # counted; the call itself is a no-op
