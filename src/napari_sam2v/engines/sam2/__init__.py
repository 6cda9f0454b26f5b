"""SAM 2 / SAM 2.1 / EdgeTAM video engine on transformers (streaming, bounded memory).

The model registry (:mod:`.registry`) imports without torch, so listing or checking
models stays fast; :class:`Sam2Engine` (and torch) load on first access. Prefer
:func:`napari_sam2v.engines.create_engine` (``create_engine("sam2", model=...)``).
"""

from __future__ import annotations

from typing import Any

from napari_sam2v.engines.sam2.registry import (
    DEFAULT_MODEL,
    DEVICES,
    PRECISIONS,
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
    "DEVICES",
    "NO_OBJECT_LOGIT",
    "PRECISIONS",
    "RANDOM_TINY",
    "ModelSource",
    "ModelSpec",
    "Sam2Engine",
    "download_model",
    "is_cached",
    "list_models",
    "resolve_model",
]


def __getattr__(name: str) -> Any:
    if name in ("Sam2Engine", "NO_OBJECT_LOGIT"):
        from napari_sam2v.engines.sam2 import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'napari_sam2v.engines.sam2' has no attribute {name!r}")
