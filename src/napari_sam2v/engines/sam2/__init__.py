"""SAM 2 / SAM 2.1 / EdgeTAM video engine on transformers (streaming, bounded memory).

Importing this package imports torch; use :func:`napari_sam2v.engines.create_engine`
(``create_engine("sam2", model=..., device=...)``) to create the engine lazily.
"""

from __future__ import annotations

from napari_sam2v.engines.sam2.engine import NO_OBJECT_LOGIT, Sam2Engine
from napari_sam2v.engines.sam2.registry import (
    DEFAULT_MODEL,
    RANDOM_TINY,
    ModelSource,
    ModelSpec,
    download_model,
    is_cached,
    list_models,
    resolve_model,
)

__all__ = [
    "DEFAULT_MODEL",
    "NO_OBJECT_LOGIT",
    "RANDOM_TINY",
    "ModelSource",
    "ModelSpec",
    "Sam2Engine",
    "download_model",
    "is_cached",
    "list_models",
    "resolve_model",
]
