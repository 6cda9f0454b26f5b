"""Value types of an interactive tracking session (Qt-free)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from napari_sam2v.prompts import Prompt

__all__ = [
    "FramePrompt",
    "FrameWarning",
    "PromptEdit",
    "PropagationProgress",
    "PropagationSummary",
]


@dataclass(frozen=True)
class FramePrompt:
    """Everything the user gave for one object on one frame.

    Clicks accumulate; a box or a mask prompt sits beside them. This is the unit the
    engine receives (it replaces the object's earlier prompt on that frame).

    Parameters
    ----------
    frame, object_id : int
        Where the prompt lives.
    points : tuple of (x, y)
        Clicks in original-frame pixels.
    labels : tuple of int
        1 foreground, 0 background, one per point.
    box : tuple of float, optional
        ``(x0, y0, x1, y1)``.
    mask : ndarray, optional
        Boolean ``(H, W)`` mask prompt (replaces clicks and box).
    """

    frame: int
    object_id: int
    points: tuple[tuple[float, float], ...] = ()
    labels: tuple[int, ...] = ()
    box: tuple[float, float, float, float] | None = None
    mask: np.ndarray | None = field(default=None, compare=False)

    def to_prompt(self) -> Prompt:
        """The engine prompt for this frame and object."""
        return Prompt(
            frame=self.frame,
            object_id=self.object_id,
            points=list(self.points) if self.points else None,
            labels=list(self.labels) if self.points else None,
            box=None if self.box is None else list(self.box),
            mask=self.mask,
        )

    @classmethod
    def from_prompt(cls, prompt: Prompt) -> FramePrompt:
        """Inverse of :meth:`to_prompt`."""
        points = () if prompt.points is None else tuple(map(tuple, prompt.points.tolist()))
        labels = () if prompt.labels is None else tuple(int(v) for v in prompt.labels)
        box = None if prompt.box is None else tuple(float(v) for v in prompt.box)
        return cls(prompt.frame, prompt.object_id, points, labels, box, prompt.mask)


@dataclass(frozen=True)
class PromptEdit:
    """One undoable prompt action: the state of one (frame, object) before and after.

    ``None`` means "no prompt". Undo restores ``before``; redo restores ``after``.
    """

    frame: int
    object_id: int
    before: FramePrompt | None
    after: FramePrompt | None
    description: str


@dataclass(frozen=True)
class PropagationProgress:
    """Progress of a running propagation.

    Parameters
    ----------
    done, total : int
        Frames finished and frames planned in this run.
    frame : int
        The frame just written.
    fps : float
        Frames per second so far.
    eta_s : float
        Estimated seconds left (``nan`` before the first frame).
    """

    done: int
    total: int
    frame: int
    fps: float
    eta_s: float

    @property
    def fraction(self) -> float:
        """``done / total`` in ``[0, 1]``."""
        return self.done / self.total if self.total else 1.0


@dataclass(frozen=True)
class PropagationSummary:
    """Outcome of :meth:`TrackingSession.propagate`."""

    frames: tuple[int, ...]
    cancelled: bool
    seconds: float

    @property
    def fps(self) -> float:
        """Frames per second over the whole run."""
        return len(self.frames) / self.seconds if self.seconds > 0 else float("nan")


@dataclass(frozen=True)
class FrameWarning:
    """A frame worth checking: low model confidence or a sudden area change."""

    frame: int
    object_id: int
    kind: str
    message: str
