"""Value types of an interactive tracking session (Qt-free)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from napari_sam2v.engines.base import score_probability
from napari_sam2v.errors import PromptError
from napari_sam2v.prompts import Prompt

__all__ = [
    "FramePrompt",
    "FrameWarning",
    "PromptEdit",
    "PropagationProgress",
    "PropagationSummary",
    "frame_warnings",
]


def _box4(box: Sequence[float] | np.ndarray) -> tuple[float, float, float, float]:
    values = tuple(float(v) for v in box)
    if len(values) != 4:
        raise PromptError(f"a box is four numbers (x0, y0, x1, y1), got {len(values)}")
    return (values[0], values[1], values[2], values[3])


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

    @property
    def is_empty(self) -> bool:
        """Whether nothing is left: no click, no box and no mask."""
        return not self.points and self.box is None and self.mask is None

    def with_click(self, x: float, y: float, *, positive: bool = True) -> FramePrompt:
        """This prompt plus one click (a mask prompt is dropped: clicks replace it)."""
        return replace(
            self,
            points=(*self.points, (float(x), float(y))),
            labels=(*self.labels, int(bool(positive))),
            mask=None,
        )

    def with_clicks(
        self, points: Sequence[tuple[float, float]], labels: Sequence[int]
    ) -> FramePrompt:
        """This prompt with its clicks replaced (moved or removed); the box stays.

        Raises
        ------
        PromptError
            If ``points`` and ``labels`` differ in length.
        """
        if len(points) != len(labels):
            raise PromptError(f"{len(points)} clicks but {len(labels)} labels")
        return replace(
            self,
            points=tuple((float(x), float(y)) for x, y in points),
            labels=tuple(int(bool(v)) for v in labels),
        )

    def with_box(self, box: tuple[float, float, float, float] | None) -> FramePrompt:
        """This prompt with ``box`` (``None`` removes it); a mask prompt is dropped."""
        new_box = None if box is None else _box4(box)
        return replace(self, box=new_box, mask=None if box is not None else self.mask)

    def to_prompt(self) -> Prompt:
        """The engine prompt for this frame and object."""
        return Prompt(
            frame=self.frame,
            object_id=self.object_id,
            points=np.asarray(self.points, dtype=np.float64) if self.points else None,
            labels=np.asarray(self.labels, dtype=np.int64) if self.points else None,
            box=None if self.box is None else np.asarray(self.box, dtype=np.float64),
            mask=self.mask,
        )

    @classmethod
    def from_prompt(cls, prompt: Prompt) -> FramePrompt:
        """Inverse of :meth:`to_prompt`."""
        points = () if prompt.points is None else tuple(map(tuple, prompt.points.tolist()))
        labels = () if prompt.labels is None else tuple(int(v) for v in prompt.labels)
        box = None if prompt.box is None else _box4(prompt.box)
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


def frame_warnings(
    scores: dict[tuple[int, int], float],
    areas: dict[tuple[int, int], int],
    *,
    min_logit: float = 0.0,
    area_jump: float = 0.5,
) -> list[FrameWarning]:
    """Frames to check, from per-(frame, object) score logits and areas.

    Parameters
    ----------
    scores : dict
        ``{(frame, object_id): object score logit}``.
    areas : dict
        ``{(frame, object_id): area in pixels}``.
    min_logit : float, optional
        Logit under which a frame is flagged as "low confidence". The message gives
        the score as the tables do: the probability that the object is visible.
    area_jump : float, optional
        Relative area change between consecutive frames flagged as "area jump".

    Returns
    -------
    list of FrameWarning
        Sorted by frame, object and kind.
    """
    out: list[FrameWarning] = []
    for (frame, oid), logit in sorted(scores.items()):
        if logit < min_logit:
            out.append(
                FrameWarning(
                    frame,
                    oid,
                    "low confidence",
                    f"low confidence (score {score_probability(logit):.2f})",
                )
            )
    for (frame, oid), area in sorted(areas.items()):
        prev = areas.get((frame - 1, oid))
        if prev and area and abs(area - prev) / prev > area_jump:
            out.append(
                FrameWarning(
                    frame,
                    oid,
                    "area jump",
                    f"area jump ({prev} -> {area} px)",
                )
            )
    return sorted(out, key=lambda w: (w.frame, w.object_id, w.kind))
