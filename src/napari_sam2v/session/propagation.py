"""Propagation for :class:`~napari_sam2v.session.TrackingSession`: progress, cancel, resume."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from napari_sam2v.engines import Direction
from napari_sam2v.engines.base import propagation_order
from napari_sam2v.errors import EngineError
from napari_sam2v.session._state import SessionState
from napari_sam2v.session.values import PropagationProgress, PropagationSummary

__all__ = ["PropagationMixin"]


@dataclass
class _Run:
    """One propagation run: where it starts, and the frames it has written."""

    start: int
    direction: Direction
    frame_range: tuple[int, int] | None
    visited: set[int] = field(default_factory=set)
    #: The engine holds no memory of the visited frames (the run is continued from a
    #: reopened store): propagate again from ``start``, writing only the rest.
    replay: bool = False

    def to_dict(self) -> dict[str, Any]:
        """What the store records about the run, so a reopened session can resume it."""
        span = None if self.frame_range is None else list(self.frame_range)
        return {"start": self.start, "direction": self.direction.value, "frame_range": span}

    @classmethod
    def from_state(cls, state: dict[str, Any], done: Any) -> _Run | None:
        """The unfinished run a store's state records (``None`` if none can be resumed).

        Parameters
        ----------
        state : dict
            The store's run state (``Result.metadata["state"]``).
        done : array of bool
            Which frames the store holds.
        """
        run = state.get("run")
        if state.get("status") not in ("running", "cancelled", "failed", "interrupted"):
            return None
        if not isinstance(run, dict) or "start" not in run or "direction" not in run:
            return None
        span = run.get("frame_range")
        made = cls(
            int(run["start"]),
            Direction.parse(run["direction"]),
            None if span is None else (int(span[0]), int(span[1])),
            replay=True,
        )
        order = propagation_order(len(done), made.start, made.direction, made.frame_range)
        made.visited = {f for f, _ in order if done[f]}
        return made if len(made.visited) < len(order) else None


class PropagationMixin(SessionState):
    """Propagation methods of :class:`~napari_sam2v.session.TrackingSession`.

    Relies on the session's ``engine``, ``store``, ``n_frames``, ``_lock``,
    ``_prompts``, ``_record`` and ``_last_run`` (declared by
    :class:`~napari_sam2v.session._state.SessionState`).
    """

    # -- propagation ---------------------------------------------------------------------
    def iter_propagate(
        self,
        *,
        start: int | None = None,
        direction: str | Direction = Direction.FORWARD,
        frame_range: tuple[int, int] | None = None,
        cancel: threading.Event | None = None,
        resume: bool = False,
    ) -> Iterator[PropagationProgress]:
        """Propagate the prompts, writing each frame to the store; yield progress.

        Parameters
        ----------
        start : int, optional
            First frame (default: the first prompted frame, last for backward).
        direction : {"forward", "backward", "both"}
        frame_range : tuple of int, optional
            Inclusive ``(lo, hi)`` bounds.
        cancel : threading.Event, optional
            Set it to stop before the next frame; finished frames stay written.
        resume : bool
            Continue the last (cancelled) run instead, skipping its finished frames.

        Raises
        ------
        EngineError
            Without prompts, or ``resume`` without an unfinished run.
        """
        with self._lock:
            engine = self.engine
            if resume:
                if not self.can_resume:
                    raise EngineError(
                        "nothing to resume: no run was cancelled, or the prompts changed since"
                    )
                run = self._last_run
                assert run is not None  # can_resume holds only with an unfinished run
            else:
                d = Direction.parse(direction)
                first = engine.resolve_start(start, d, sorted({f for f, _ in self._prompts}))
                propagation_order(self.n_frames, first, d, frame_range)  # validates the range
                run = _Run(first, d, frame_range)
            self._last_run = run
            calls, total = self._plan(run)
            writer = self.store.writer() if self.store is not None else None
            status = "failed"
            if self.store is not None:
                self.store.set_state("running", interactive=True, run=run.to_dict())
            t0, done = time.perf_counter(), 0
            try:
                for first, pass_dir in calls:
                    gen = engine.propagate(
                        start=first, direction=pass_dir, frame_range=run.frame_range, cancel=cancel
                    )
                    with closing(gen):
                        for result in gen:
                            if result.frame in run.visited:
                                continue
                            self._record(result)
                            if writer is not None:
                                writer.put(result)
                            run.visited.add(result.frame)
                            run.replay = False  # the engine now holds this run's memory
                            done += 1
                            elapsed = time.perf_counter() - t0
                            fps = done / elapsed if elapsed > 0 else float("nan")
                            eta = (total - done) / fps if fps > 0 else float("nan")
                            yield PropagationProgress(done, total, result.frame, fps, eta)
                            if cancel is not None and cancel.is_set():
                                status = "cancelled"
                                return
                status = "finished"
                self._last_run = None
            except GeneratorExit:
                status = "cancelled"
                raise
            finally:
                if writer is not None:
                    writer.close()  # drains the queue: every yielded frame is on disk
                    complete = status == "finished" and bool(self.store.frames_done.all())
                    self.store.set_state(
                        "complete"
                        if complete
                        else ("interactive" if status == "finished" else status),
                        frames_done=int(self.store.frames_done.sum()),
                        run=run.to_dict(),
                    )

    def _plan(self, run: _Run) -> tuple[list[tuple[int, Direction]], int]:
        """Engine calls still needed by a run (one call when fresh, one per pass when resumed)."""
        order = propagation_order(self.n_frames, run.start, run.direction, run.frame_range)
        left = [(f, d) for f, d in order if f not in run.visited]
        if not run.visited or run.replay:
            return [(run.start, run.direction)], len(left)
        calls = []
        for pass_dir in (Direction.FORWARD, Direction.BACKWARD):
            frames = [f for f, d in left if d is pass_dir]
            if frames:
                calls.append((frames[0], pass_dir))
        return calls, len(left)

    def propagate(
        self,
        *,
        progress: Callable[[PropagationProgress], None] | None = None,
        **options: Any,
    ) -> PropagationSummary:
        """Run :meth:`iter_propagate` to the end; see it for the options."""
        cancel = options.get("cancel")
        t0, frames = time.perf_counter(), []
        for info in self.iter_propagate(**options):
            frames.append(info.frame)
            if progress is not None:
                progress(info)
        cancelled = bool(cancel is not None and cancel.is_set())
        return PropagationSummary(tuple(frames), cancelled, time.perf_counter() - t0)

    @property
    def can_resume(self) -> bool:
        """Whether a cancelled run can be continued with ``resume=True``."""
        return self._last_run is not None and bool(self._last_run.visited)
