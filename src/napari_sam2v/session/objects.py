"""Objects of :class:`~napari_sam2v.session.TrackingSession`: add, rename, recolour, delete."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from napari_sam2v.errors import EngineError, PromptError
from napari_sam2v.session._state import SessionState
from napari_sam2v.types import ObjectInfo

__all__ = ["ObjectsMixin"]


class ObjectsMixin(SessionState):
    """The tracked objects of a session (ids, names, colours).

    Relies on the session's ``store``, ``n_frames``, ``_engine``, ``_prompts``,
    ``_undo``, ``_redo``, ``_last_run`` and ``_sync_store_objects`` (declared by
    :class:`~napari_sam2v.session._state.SessionState`). The objects dictionary is
    replaced, never mutated, so readers always see a snapshot.
    """

    @property
    def objects(self) -> list[ObjectInfo]:
        """Objects in id order."""
        objects = self._objects  # a snapshot: the dict is replaced, never mutated
        return [objects[k] for k in sorted(objects)]

    def object(self, object_id: int) -> ObjectInfo:
        """The :class:`ObjectInfo` of ``object_id``."""
        try:
            return self._objects[object_id]
        except KeyError:
            raise EngineError(f"unknown object id {object_id}") from None

    def add_object(self, name: str = "", color: str = "") -> ObjectInfo:
        """Create an object with the next free id and make it current."""
        with self._lock:
            obj = ObjectInfo(max(self._objects, default=0) + 1, name, color)
            self._objects = {**self._objects, obj.id: obj}
            self.current_object = obj.id
            self._sync_store_objects()
            return obj

    def rename_object(self, object_id: int, name: str) -> ObjectInfo:
        """Give an object a new (free-text) name."""
        return self._replace_object(object_id, name=name.strip() or f"object {object_id}")

    def recolor_object(self, object_id: int, color: str) -> ObjectInfo:
        """Give an object a new ``#rrggbb`` colour."""
        try:
            return self._replace_object(object_id, color=color)
        except ValueError as exc:
            raise PromptError(str(exc)) from None

    def _replace_object(self, object_id: int, **changes: Any) -> ObjectInfo:
        with self._lock:
            obj = replace(self.object(object_id), **changes)
            self._objects = {**self._objects, object_id: obj}
            self._sync_store_objects()
            return obj

    def delete_object(self, object_id: int) -> None:
        """Delete an object, its prompts and its pixels in the store (not undoable)."""
        with self._lock:
            self.object(object_id)
            if self._engine is not None and object_id in self._engine.object_ids:
                self._engine.remove_object(object_id)
            self._prompts = {k: v for k, v in self._prompts.items() if k[1] != object_id}
            self._undo = [e for e in self._undo if e.object_id != object_id]
            self._redo = [e for e in self._redo if e.object_id != object_id]
            self._objects = {k: v for k, v in self._objects.items() if k != object_id}
            if self.current_object == object_id:
                self.current_object = max(self._objects, default=None)
            self._last_run = None
            if self.store is not None:
                labels = self.store.labels
                for t in range(self.n_frames):
                    frame = np.asarray(labels[t])
                    if (hit := frame == object_id).any():
                        frame[hit] = 0
                        labels[t] = frame
            self._sync_store_objects()
