"""napari-sam2v: click objects in a video, propagate them with SAM 2, measure them.

The data path, one stage per subpackage (all Qt-free)::

    io (lazy frames) -> engines (SAM 2 | classic) -> store (OME-Zarr, frame by frame)
        -> analysis (pandas tables, plots) -> napari widget (_qt) / CLI (cli)

The public API is imported lazily so that ``import napari_sam2v`` stays cheap and
never imports Qt, napari or torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from napari_sam2v._version import __version__

__all__ = [
    "Calibration",
    "ObjectInfo",
    "Prompt",
    "Prompts",
    "__version__",
    "create_engine",
    "measure",
    "open_result",
    "open_video",
    "track",
]

_LAZY = {
    "Calibration": "napari_sam2v.types",
    "ObjectInfo": "napari_sam2v.types",
    "Prompt": "napari_sam2v.prompts",
    "Prompts": "napari_sam2v.io.prompt_files",
    "create_engine": "napari_sam2v.engines",
    "open_video": "napari_sam2v.io",
    "track": "napari_sam2v.store.pipeline",
    "open_result": "napari_sam2v.store",
    "measure": "napari_sam2v.analysis",
}

if TYPE_CHECKING:  # pragma: no cover
    from napari_sam2v.analysis import measure
    from napari_sam2v.engines import create_engine
    from napari_sam2v.io import open_video
    from napari_sam2v.io.prompt_files import Prompts
    from napari_sam2v.prompts import Prompt
    from napari_sam2v.store import open_result
    from napari_sam2v.store.pipeline import track
    from napari_sam2v.types import Calibration, ObjectInfo


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'napari_sam2v' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
