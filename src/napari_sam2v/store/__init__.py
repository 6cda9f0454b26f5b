"""The OME-Zarr result store: writing, reading and exports (Qt-free).

Writing is :class:`ResultStore` and :func:`track`, reading :func:`open_result` and
:class:`Result`, exports :mod:`.exports`.

:func:`track` (in :mod:`.pipeline`) runs source -> engine -> store; it imports only the
engine API, never torch, so reading a result stays light.
"""

from __future__ import annotations

from napari_sam2v.store.pipeline import ProgressInfo, track
from napari_sam2v.store.result import Result, open_result
from napari_sam2v.store.result_store import ResultStore

__all__ = ["ProgressInfo", "Result", "ResultStore", "open_result", "track"]
