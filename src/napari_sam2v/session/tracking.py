"""The :class:`TrackingSession` controller: engine, objects, prompts, history, propagation."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from napari_sam2v.engines import Engine, EngineInfo, FrameResult, create_engine
from napari_sam2v.engines.frames import check_frame_size
from napari_sam2v.errors import EngineError, PromptError, StoreError
from napari_sam2v.prompts import PromptSet
from napari_sam2v.session.binding import StoreBindingMixin
from napari_sam2v.session.objects import ObjectsMixin
from napari_sam2v.session.propagation import PropagationMixin
from napari_sam2v.session.values import (
    FramePrompt,
    FrameWarning,
    PromptEdit,
    frame_warnings,
)
from napari_sam2v.types import Calibration, ObjectInfo

__all__ = ["TrackingSession"]


class TrackingSession(ObjectsMixin, StoreBindingMixin, PropagationMixin):
    """Interactive state of one video: engine, objects, prompts, history and store.

    Parameters
    ----------
    frames : array-like
        ``(t, y, x)`` or ``(t, y, x, c)`` frames, read lazily (never copied).
    channel : int, optional
        Channel of multi-channel (non-RGB) frames.
    engine : {"sam2", "classic"}
        Engine name for :func:`napari_sam2v.engines.create_engine`.
    engine_options : dict, optional
        Keyword options of the engine (``model``, ``device``, ...).
    engine_factory : callable, optional
        Zero-argument callable returning an :class:`Engine`; overrides ``engine``.
    calibration : Calibration, optional
        Physical calibration recorded in the store.
    video_path : str, optional
        Source file of the frames, recorded so the session can be reopened.

    Notes
    -----
    Calls that change state (prompts, objects, propagation) are serialised by one
    lock and may run in worker threads. Reading :attr:`objects`, :attr:`prompts` and
    :meth:`warnings` never waits for that lock: the dictionaries behind them are
    replaced, not mutated, so a reader always sees a consistent snapshot.
    """

    def __init__(
        self,
        frames: Any,
        *,
        channel: int | None = None,
        engine: str = "sam2",
        engine_options: dict[str, Any] | None = None,
        engine_factory: Callable[[], Engine] | None = None,
        calibration: Calibration | None = None,
        video_path: str | None = None,
    ) -> None:
        shape = tuple(getattr(frames, "shape", ()))
        if len(shape) not in (3, 4):
            raise EngineError(f"frames must have axes (t, y, x) or (t, y, x, c); got {shape}")
        check_frame_size(int(shape[1]), int(shape[2]))  # before a store is made for them
        self.frames = frames
        self.channel = channel
        self.n_frames = int(shape[0])
        self.frame_shape = (int(shape[1]), int(shape[2]))
        self.calibration = calibration or Calibration()
        self.video_path = video_path
        self.engine_name = engine
        self.engine_options = dict(engine_options or {})
        self._factory = engine_factory
        self._engine: Engine | None = None
        self._lock = threading.RLock()
        self._objects: dict[int, ObjectInfo] = {}
        self.current_object: int | None = None
        self._prompts: dict[tuple[int, int], FramePrompt] = {}
        self._undo: list[PromptEdit] = []
        self._redo: list[PromptEdit] = []
        self._scores: dict[tuple[int, int], float] = {}
        self._areas: dict[tuple[int, int], int] = {}
        self._last_run = None  # the unfinished propagation run, if any

    # -- engine ----------------------------------------------------------------------
    def configure_engine(self, engine: str, **options: Any) -> None:
        """Choose another engine or model; it is built on next use, prompts replayed."""
        with self._lock:
            self.close_engine()
            self.engine_name, self.engine_options, self._factory = engine, dict(options), None

    @property
    def engine_loaded(self) -> bool:
        """Whether the engine has been built (model loaded)."""
        return self._engine is not None

    @property
    def engine(self) -> Engine:
        """The engine, built on first access with the video attached and prompts replayed."""
        with self._lock:
            if self._engine is None:
                engine = (
                    self._factory()
                    if self._factory is not None
                    else create_engine(self.engine_name, **self.engine_options)
                )
                try:
                    engine.set_video(self.frames, channel=self.channel)
                    for entry in self._prompts.values():
                        engine.add_prompt(entry.to_prompt())
                except BaseException:
                    engine.close()
                    raise
                self._engine = engine
            return self._engine

    def load_engine(self) -> EngineInfo:
        """Build the engine now (the slow model load) and return its provenance."""
        return self.engine.info

    def close_engine(self) -> None:
        """Release the engine; the next call that needs it builds a new one."""
        with self._lock:
            if self._engine is not None:
                self._engine.close()
                self._engine = None
                self._last_run = None

    def prefetch(self, frame: int) -> None:
        """Encode ``frame`` ahead of a click (no-op for engines without a cache)."""
        self.engine.prefetch(frame)

    # -- prompts and history -----------------------------------------------------------
    @property
    def prompts(self) -> PromptSet:
        """All current prompts (frame order) with the objects."""
        entries = sorted(self._prompts.items(), key=lambda kv: kv[0])  # a snapshot
        return PromptSet(self.objects, [entry.to_prompt() for _, entry in entries])

    def frame_prompt(self, frame: int, object_id: int) -> FramePrompt | None:
        """The prompt of one object on one frame, if any."""
        return self._prompts.get((frame, object_id))

    def _target(self, object_id: int | None, *, create: bool = True) -> int:
        """The object an edit applies to: ``object_id``, else the current object.

        With no current object, ``create`` adds one (a new click or box starts an
        object); without it, :class:`PromptError` is raised and nothing changes.
        """
        oid = self.current_object if object_id is None else object_id
        if oid is None:
            if not create:
                raise PromptError("no object is selected: select or add one first")
            oid = self.add_object().id
        self.object(oid)
        return oid

    def add_click(
        self, frame: int, x: float, y: float, *, positive: bool = True, object_id: int | None = None
    ) -> FrameResult:
        """Add a foreground (or background) click and return the frame's masks."""
        kind = "foreground" if positive else "background"
        return self._edit(
            frame,
            object_id,
            lambda p: p.with_click(x, y, positive=positive),
            f"{kind} click on frame {frame}",
        )

    def set_clicks(
        self,
        frame: int,
        points: Sequence[tuple[float, float]],
        labels: Sequence[int],
        *,
        object_id: int | None = None,
    ) -> FrameResult:
        """Replace an object's clicks on a frame (moved or deleted points); undoable.

        The box stays. With no click and no box left, the object's prompt on that
        frame is removed, as :meth:`clear_frame` does.
        """
        return self._edit(
            frame,
            object_id,
            lambda p: p.with_clicks(points, labels),
            f"edited clicks on frame {frame}",
            create=False,
        )

    def set_box(
        self, frame: int, box: tuple[float, float, float, float], *, object_id: int | None = None
    ) -> FrameResult:
        """Set the box ``(x0, y0, x1, y1)`` of an object on a frame."""
        return self._edit(frame, object_id, lambda p: p.with_box(box), f"box on frame {frame}")

    def remove_box(self, frame: int, *, object_id: int | None = None) -> FrameResult:
        """Remove an object's box on a frame (its clicks stay); undoable."""
        return self._edit(
            frame,
            object_id,
            lambda p: p.with_box(None),
            f"removed box on frame {frame}",
            create=False,
        )

    def _edit(
        self,
        frame: int,
        object_id: int | None,
        change: Callable[[FramePrompt], FramePrompt],
        description: str,
        *,
        create: bool = True,
    ) -> FrameResult:
        """Apply ``change`` to an object's prompt on ``frame`` as one undoable edit.

        With ``create``, a missing current object is added first (a new click or box
        starts one); edits of existing prompts never add an object.
        """
        with self._lock:
            oid = self._target(object_id, create=create)
            old = self._prompts.get((frame, oid))
            new = change(old or FramePrompt(frame, oid))
            if old is None and new.is_empty:
                raise PromptError(f"object {oid} has no prompt on frame {frame}")
            return self._apply(
                PromptEdit(frame, oid, old, None if new.is_empty else new, description)
            )

    def set_mask(
        self, frame: int, mask: np.ndarray, *, object_id: int | None = None
    ) -> FrameResult:
        """Use a mask as the object's prompt on a frame (replaces its clicks and box)."""
        with self._lock:
            oid = self._target(object_id)
            new = FramePrompt(frame, oid, mask=np.asarray(mask, dtype=bool))
            old = self._prompts.get((frame, oid))
            return self._apply(PromptEdit(frame, oid, old, new, f"mask on frame {frame}"))

    def mask_from_labels(self, frame: int, *, object_id: int | None = None) -> FrameResult:
        """Feed the object's (hand-edited) pixels in the store back as a mask prompt."""
        if self.store is None:
            raise StoreError("no result store: create or open one before using edited labels")
        oid = self._target(object_id)
        mask = np.asarray(self.store.labels[frame]) == oid
        if not mask.any():
            raise PromptError(
                f"object {oid} has no pixels on frame {frame}: paint it in the labels first"
            )
        return self.set_mask(frame, mask, object_id=oid)

    def import_prompts(self, prompts: PromptSet) -> dict[int, FrameResult]:
        """Add the objects and prompts of a prompt file (each prompt undoable).

        Objects with a known id take the file's name and colour. Returns the last
        preview of every prompted frame.

        Raises
        ------
        PromptError
            If a prompt lies outside the video (nothing is imported then).
        """
        with self._lock:
            prompts.check_bounds(self.frame_shape, self.n_frames)
            self._objects = {**self._objects, **{o.id: o for o in prompts.objects}}
            results: dict[int, FrameResult] = {}
            for prompt in prompts:
                key = (prompt.frame, prompt.object_id)
                edit = PromptEdit(
                    prompt.frame,
                    prompt.object_id,
                    self._prompts.get(key),
                    FramePrompt.from_prompt(prompt),
                    f"imported prompt {key}",
                )
                results[prompt.frame] = self._apply(edit)
            if prompts.objects:
                self.current_object = prompts.objects[0].id
            self._sync_store_objects()
            return results

    def clear_frame(self, frame: int, *, object_id: int | None = None) -> FrameResult | None:
        """Remove the prompts on a frame (of one object, or all); undoable per object."""
        with self._lock:
            oids = [o for (f, o) in sorted(self._prompts) if f == frame]
            if object_id is not None:
                oids = [o for o in oids if o == object_id]
            result = None
            for oid in oids:
                edit = PromptEdit(
                    frame, oid, self._prompts[(frame, oid)], None, f"clear frame {frame}"
                )
                result = self._apply(edit)
            return result

    @property
    def can_undo(self) -> bool:
        """Whether there is a prompt action to undo."""
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        """Whether there is an undone prompt action to redo."""
        return bool(self._redo)

    def undo(self) -> tuple[PromptEdit, FrameResult | None]:
        """Undo the last prompt action; return it and the frame's new masks."""
        with self._lock:
            if not self._undo:
                raise EngineError("nothing to undo")
            edit = self._undo[-1]
            result = self._set_entry(edit.frame, edit.object_id, edit.before)
            self._redo.append(self._undo.pop())
            return edit, result

    def redo(self) -> tuple[PromptEdit, FrameResult | None]:
        """Redo the last undone prompt action; return it and the frame's new masks."""
        with self._lock:
            if not self._redo:
                raise EngineError("nothing to redo")
            edit = self._redo[-1]
            result = self._set_entry(edit.frame, edit.object_id, edit.after)
            self._undo.append(self._redo.pop())
            return edit, result

    def _apply(self, edit: PromptEdit) -> FrameResult:
        result = self._set_entry(edit.frame, edit.object_id, edit.after)
        self._undo.append(edit)
        self._redo.clear()
        if result is None:  # a cleared frame: report the masks that remain
            result = FrameResult(edit.frame)
        return result

    def _set_entry(self, frame: int, oid: int, entry: FramePrompt | None) -> FrameResult | None:
        """Make (frame, oid) hold ``entry`` in the session, the engine and the preview."""
        engine = self.engine
        key = (frame, oid)
        result: FrameResult | None
        if entry is not None:
            prompt = entry.to_prompt()
            result = engine.add_prompt(prompt)  # validates first: state untouched on error
            self._prompts = {**self._prompts, key: entry}  # replaced, never mutated
        else:
            self._prompts = {k: v for k, v in self._prompts.items() if k != key}
            if oid in engine.object_ids:
                engine.clear_frame(frame, object_id=oid)
            others = [p for (f, _), p in sorted(self._prompts.items()) if f == frame]
            result = engine.add_prompt(others[-1].to_prompt()) if others else None
        self._last_run = None
        self._write_preview(frame, result, cleared=None if entry is not None else oid)
        return result

    # -- previews, results and warnings ------------------------------------------------
    def _record(self, result: FrameResult) -> None:
        for oid, mask in result.masks.items():
            self._areas[(result.frame, oid)] = int(np.count_nonzero(mask))
        for oid, score in result.scores.items():
            self._scores[(result.frame, oid)] = float(score.object_score_logit)

    def compose(self, result: FrameResult) -> np.ndarray:
        """Label image ``(H, W)`` of a frame result, using the engine overlap rule."""
        return result.labels(self.frame_shape, dtype=self.label_dtype)

    @property
    def label_dtype(self) -> np.dtype:
        """Dtype of label images (the store's when bound)."""
        if self.store is not None:
            return np.dtype(self.store.labels.dtype)
        return np.dtype(np.uint16)

    def _write_preview(self, frame: int, result: FrameResult | None, cleared: int | None) -> None:
        if result is not None:
            self._record(result)
        if self.store is None:
            return
        labels = self.store.labels
        current = np.asarray(labels[frame])
        new = current.copy()
        if cleared is not None:
            new[new == cleared] = 0
        if result is not None and result.masks:
            for oid in result.masks:
                new[new == oid] = 0
            composed = self.compose(result)
            new = np.where(composed > 0, composed, new).astype(current.dtype)
        if not np.array_equal(new, current):
            labels[frame] = new

    def warnings(self, *, min_logit: float = 0.0, area_jump: float = 0.5) -> list[FrameWarning]:
        """Frames to check: object score below ``min_logit`` or area change above ``area_jump``.

        Parameters
        ----------
        min_logit : float
            Object-score logit under which a frame is flagged (0 = "probably absent").
        area_jump : float
            Relative area change between consecutive frames that is flagged (0.5 = 50 %).
        """
        # snapshots: workers add to the dictionaries
        return frame_warnings(
            dict(self._scores), dict(self._areas), min_logit=min_logit, area_jump=area_jump
        )

    # -- state restored from a result store ------------------------------------------
    def restore_state(
        self,
        *,
        objects: list[ObjectInfo],
        prompts: list[FramePrompt],
        current: int | None = None,
        scores: Any = None,
    ) -> None:
        """Replace objects and prompts (history cleared); used when reopening a store."""
        with self._lock:
            restored = {o.id: o for o in objects}
            for entry in prompts:
                restored.setdefault(entry.object_id, ObjectInfo(entry.object_id))
            self._objects = restored
            self._prompts = {(e.frame, e.object_id): e for e in prompts}
            self._undo.clear()
            self._redo.clear()
            self.current_object = (
                current
                if current in self._objects
                else (min(self._objects) if self._objects else None)
            )
            if scores is not None and len(scores):
                for row in scores.itertuples(index=False):
                    key = (int(row.frame), int(row.object_id))
                    self._scores[key] = float(row.object_score_logit)
            if self._engine is not None:
                self._engine.reset()
                for entry in prompts:
                    self._engine.add_prompt(entry.to_prompt())

    def close(self) -> None:
        """Release the store and the engine."""
        self.close_store()
        self.close_engine()
