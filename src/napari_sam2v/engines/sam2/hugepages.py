"""Transparent huge pages for the large CPU tensors of a SAM 2 step (Linux).

A SAM 2 step on a CPU allocates and frees hundreds of large tensors: score
matrices of 60-230 MB, projected and rotated memory keys, encoder activations.
Each one is a fresh ``mmap`` whose pages the kernel maps and zeroes one 4 KiB
page fault at a time. On this project's 2-core development VM those faults cost
more than half of a bf16 softmax or of a tensor copy. PyTorch's CPU allocator
can page-align such blocks and ask the kernel for transparent huge pages
(its ``THP_MEM_ALLOC_ENABLE`` switch), which takes 512 times fewer faults.

PyTorch reads that switch once, at its first CPU allocation, so it must be set
before any tensor exists. This module is torch-free and
:mod:`napari_sam2v.engines.sam2` calls :func:`use_huge_pages` when it is
imported, before anything of torch is used. Results are unchanged: only how
memory is mapped.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["HUGE_PAGES_ENV", "TORCH_THP_ENV", "huge_pages_requested", "use_huge_pages"]

#: Set to ``0`` to keep napari-sam2v from turning huge pages on.
HUGE_PAGES_ENV = "NAPARI_SAM2V_HUGE_PAGES"
#: PyTorch's own switch, read by its CPU allocator at its first allocation.
TORCH_THP_ENV = "THP_MEM_ALLOC_ENABLE"
_THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def use_huge_pages() -> bool:
    """Ask PyTorch to back large CPU tensors with transparent huge pages.

    Sets ``THP_MEM_ALLOC_ENABLE=1`` in this process's environment unless the user
    set that variable already (their value is kept). It takes effect only if
    torch has not allocated a CPU tensor yet in this process; to be sure, set
    ``THP_MEM_ALLOC_ENABLE=1`` before starting Python.

    Returns
    -------
    bool
        Whether huge pages are requested (see :func:`huge_pages_requested`).
        Nothing is set off Linux, when the kernel's transparent huge pages are
        ``never`` or unknown, or when :data:`HUGE_PAGES_ENV` is ``0``.
    """
    if sys.platform != "linux" or os.environ.get(HUGE_PAGES_ENV, "1").strip() == "0":
        return huge_pages_requested()
    try:
        mode = _THP_MODE.read_text()
    except OSError:
        return huge_pages_requested()
    if "[never]" not in mode:
        os.environ.setdefault(TORCH_THP_ENV, "1")
    return huge_pages_requested()


def huge_pages_requested() -> bool:
    """Whether PyTorch's huge-page switch is set in this process's environment."""
    return os.environ.get(TORCH_THP_ENV, "").strip() not in ("", "0")
