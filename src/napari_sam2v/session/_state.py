"""The state that the parts of :class:`~napari_sam2v.session.TrackingSession` share.

``TrackingSession`` is put together from mixins (objects, store binding, propagation).
Each of them reads attributes that ``TrackingSession.__init__`` sets, or calls a method
another part defines. :class:`SessionState` declares those once, so every mixin (and a
type checker) sees what it relies on; it holds no behaviour of its own.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from napari_sam2v.engines import Engine, FrameResult
    from napari_sam2v.session.propagation import _Run
    from napari_sam2v.session.values import FramePrompt, PromptEdit
    from napari_sam2v.types import Calibration, ObjectInfo

__all__ = ["SessionState"]


class SessionState:
    """Attributes and cross-part methods of a tracking session (declarations only)."""

    frames: Any
    n_frames: int
    calibration: Calibration
    _engine: Engine | None
    _lock: threading.RLock
    _objects: dict[int, ObjectInfo]
    current_object: int | None
    _prompts: dict[tuple[int, int], FramePrompt]
    _undo: list[PromptEdit]
    _redo: list[PromptEdit]
    _last_run: _Run | None

    if TYPE_CHECKING:  # pragma: no cover - defined by the parts that own them

        @property
        def engine(self) -> Engine:
            """The engine (``TrackingSession``)."""

        @property
        def store(self) -> Any:
            """The bound result store (``StoreBindingMixin``)."""

        @store.setter
        def store(self, store: Any) -> None: ...

        def _record(self, result: FrameResult) -> None:
            """Keep a frame's areas and scores (``TrackingSession``)."""

        def _sync_store_objects(self) -> None:
            """Save the objects into the bound store (``StoreBindingMixin``)."""

        def save(self) -> None:
            """Save into the bound store (``StoreBindingMixin``)."""
