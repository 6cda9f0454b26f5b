"""Engines: SAM 2 (transformers) and the weights-free classic engine, one API.

Use :func:`create_engine` rather than importing engine classes directly; it
imports torch only for engines that need it.
"""

from __future__ import annotations

from typing import Any

from napari_sam2v.engines.base import (
    Direction,
    Engine,
    EngineInfo,
    FrameResult,
    ObjectScore,
    compose_labels,
)
from napari_sam2v.errors import EngineError

__all__ = [
    "ENGINE_NAMES",
    "Direction",
    "Engine",
    "EngineInfo",
    "FrameResult",
    "ObjectScore",
    "check_engine_options",
    "compose_labels",
    "create_engine",
]

#: Names accepted by :func:`create_engine`.
ENGINE_NAMES = ("sam2", "classic")


def create_engine(name: str = "sam2", **options: Any) -> Engine:
    """Create an engine by name.

    Parameters
    ----------
    name : {"sam2", "classic"}
        ``"sam2"`` for SAM 2 / SAM 2.1 / EdgeTAM through transformers,
        ``"classic"`` for the weights-free scikit-image engine.
    **options
        Keyword options of the engine class (for SAM 2: ``model``, ``device``, ...).

    Returns
    -------
    Engine

    Raises
    ------
    EngineError
        For an unknown engine name.

    Examples
    --------
    >>> from napari_sam2v.engines import create_engine
    >>> engine = create_engine("classic")
    >>> engine.name
    'classic'
    """
    if name == "sam2":
        from napari_sam2v.engines.sam2 import Sam2Engine

        return Sam2Engine(**options)
    if name == "classic":
        from napari_sam2v.engines.classic import ClassicEngine

        return ClassicEngine(**options)
    raise EngineError(f"unknown engine {name!r}: choose one of {', '.join(ENGINE_NAMES)}")


def check_engine_options(name: str, options: dict[str, Any]) -> None:
    """Raise a clear error for options that the engine ``name`` would refuse.

    Checked before a long run starts (the CLI, batch runs), so a typo fails at
    once rather than on every video. The classic engine is built once to
    validate values too (cheap); for SAM 2 only the option names are checked
    (building it loads a model).

    Raises
    ------
    EngineError
        Unknown engine, unknown option name or (classic) invalid value.
    """
    if name == "classic":
        create_engine("classic", **options).close()
        return
    if name != "sam2":
        raise EngineError(f"unknown engine {name!r}: choose one of {', '.join(ENGINE_NAMES)}")
    import inspect

    from napari_sam2v.engines.sam2.engine import Sam2Engine

    known = sorted(inspect.signature(Sam2Engine).parameters)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise EngineError(
            f"sam2 engine: unknown option(s) {', '.join(unknown)}; "
            f"known options: {', '.join(known)}"
        )
