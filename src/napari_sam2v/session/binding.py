"""Binding a tracking session to its OME-Zarr result store: create, reopen, save, close.

A mixin of :class:`~napari_sam2v.session.TrackingSession`; the store work itself is in
:mod:`~napari_sam2v.session.persistence`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from napari_sam2v.engines import Engine
    from napari_sam2v.session.tracking import TrackingSession

__all__ = ["StoreBindingMixin"]


class StoreBindingMixin:
    """Create, reopen, save and release the result store of a session."""

    store: Any
    _lock: threading.RLock

    def create_store(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Any:
        """Create an OME-Zarr result store for this session and bind it.

        The frames are referenced by ``video_path`` when there is one, and copied into
        the store otherwise (up to 512 MiB), so the session can always be reopened.

        Raises
        ------
        StoreError
            If ``path`` exists (unless ``overwrite``) or cannot be written.
        StoreLockedError
            If another writer holds the store.
        """
        from napari_sam2v.session.persistence import create_store

        with self._lock:
            self.close_store()
            self.store = create_store(self, path, overwrite=overwrite)
            return self.store

    @classmethod
    def from_store(
        cls,
        path: str | os.PathLike[str],
        *,
        frames: Any = None,
        engine_factory: Callable[[], Engine] | None = None,
    ) -> TrackingSession:
        """Reopen a session saved in a result store: objects, prompts, settings, labels.

        Parameters
        ----------
        path : path-like
            The ``.zarr`` result store.
        frames : array-like, optional
            The video; by default the copy inside the store or the referenced file.
        engine_factory : callable, optional
            Overrides the engine recorded in the store.

        Raises
        ------
        StoreError
            If the store is unreadable, or the video is missing or of another size.
        """
        from napari_sam2v.session.persistence import open_session

        return open_session(path, frames=frames, engine_factory=engine_factory)

    def save(self) -> None:
        """Save prompts, objects, settings and calibration into the bound store."""
        from napari_sam2v.session.persistence import save_session

        with self._lock:
            save_session(self)

    def close_store(self) -> None:
        """Save and release the bound store (its writer lock)."""
        with self._lock:
            if self.store is not None:
                try:
                    self.save()
                finally:
                    self.store.close()
                    self.store = None

    def _sync_store_objects(self) -> None:
        if self.store is not None:
            self.save()
