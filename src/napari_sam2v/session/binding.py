"""Binding a tracking session to its OME-Zarr result store: create, reopen, save, close.

A mixin of :class:`~napari_sam2v.session.TrackingSession`; the store work itself is in
:mod:`~napari_sam2v.session.persistence`.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from napari_sam2v.session._state import SessionState
from napari_sam2v.types import Calibration

if TYPE_CHECKING:  # pragma: no cover
    from napari_sam2v.engines import Engine
    from napari_sam2v.session.tracking import TrackingSession

__all__ = ["StoreBindingMixin", "bound_session"]

# Sessions of this process by the resolved path of the store they hold. Another front
# end (the Results dock) reaches a held store through its session, whose lock orders
# the writes, instead of failing on the store's writer lock.
_BOUND: weakref.WeakValueDictionary[str, StoreBindingMixin] = weakref.WeakValueDictionary()


def _key(path: str | os.PathLike[str]) -> str:
    return str(Path(path).resolve())


def bound_session(path: str | os.PathLike[str]) -> TrackingSession | None:
    """The tracking session of this process that holds the store at ``path``, if any."""
    return _BOUND.get(_key(path))  # type: ignore[return-value]


class StoreBindingMixin(SessionState):
    """Create, reopen, save and release the result store of a session."""

    _store: Any = None

    @property
    def store(self) -> Any:
        """The bound :class:`~napari_sam2v.store.ResultStore` (``None`` until created)."""
        return self._store

    @store.setter
    def store(self, store: Any) -> None:
        if self._store is not None and _BOUND.get(_key(self._store.path)) is self:
            del _BOUND[_key(self._store.path)]
        self._store = store
        if store is not None:
            _BOUND[_key(store.path)] = self

    def set_calibration(self, calibration: Calibration) -> Calibration:
        """Change the calibration, and the bound store's provenance and OME-Zarr scales.

        Waits while a propagation holds the session.

        Parameters
        ----------
        calibration : Calibration
            The new calibration.

        Returns
        -------
        Calibration
            The previous calibration.

        Raises
        ------
        StoreError
            If the store's metadata cannot be rewritten (the session keeps the old one).
        """
        with self._lock:
            previous = self.calibration
            if self.store is not None:
                self.store.set_calibration(calibration)
            self.calibration = calibration
            return previous

    @property
    def bytes_copied_into_store(self) -> int:
        """How many bytes of frames :meth:`create_store` copies (0 when it references a file)."""
        from napari_sam2v.session.persistence import frames_copied

        return frames_copied(cast("TrackingSession", self))

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
            self.store = create_store(cast("TrackingSession", self), path, overwrite=overwrite)
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
            save_session(cast("TrackingSession", self))

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
