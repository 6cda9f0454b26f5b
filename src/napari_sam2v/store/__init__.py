"""The OME-Zarr result store: writing (:class:`ResultStore`, :func:`track`), reading
(:func:`open_result`, :class:`Result`) and exports (:mod:`.exports`). Qt-free.

``track`` is imported lazily (``from napari_sam2v.store import track`` works) so that
reading a result never imports the engines.
"""

from __future__ import annotations

from typing import Any

from napari_sam2v.store.result import Result, open_result
from napari_sam2v.store.result_store import ResultStore

__all__ = ["Result", "ResultStore", "open_result", "track"]


def __getattr__(name: str) -> Any:
    if name == "track":
        from napari_sam2v.store.track import track

        return track
    raise AttributeError(f"module 'napari_sam2v.store' has no attribute {name!r}")
