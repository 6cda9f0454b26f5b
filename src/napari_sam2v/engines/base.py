"""The engine API shared by SAM 2 and the classic engine.

Every front end (napari widget, CLI, batch) drives engines only through
:class:`Engine`. A session looks like this::

    engine = create_engine("classic")          # or "sam2", model="sam2.1-tiny"
    engine.set_video(frames)                    # any (t, y, x[, c]) array-like
    result = engine.add_prompt(Prompt(frame=0, object_id=1, points=[[120, 80]]))
    for frame_result in engine.propagate(direction="both"):
        store.write(frame_result)

Propagation is a generator: closing it (or setting ``cancel``) stops between
frames, and every frame already yielded stays valid.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

import numpy as np

from napari_sam2v.engines.frames import FrameNormalizer
from napari_sam2v.errors import EngineError, PromptError
from napari_sam2v.prompts import Prompt

__all__ = [
    "Direction",
    "Engine",
    "EngineInfo",
    "FrameResult",
    "ObjectScore",
    "compose_labels",
    "propagation_order",
    "score_probability",
]


def score_probability(logit: Any) -> Any:
    """The probability that an object is visible, from its object score logit.

    Parameters
    ----------
    logit : float or array_like
        ``ObjectScore.object_score_logit`` values.

    Returns
    -------
    float or ndarray
        ``1 / (1 + exp(-logit))``, in ``[0, 1]``; large logits do not overflow.

    Examples
    --------
    >>> float(score_probability(0.0)), float(score_probability(-1000.0))
    (0.5, 0.0)
    """
    x = np.asarray(logit, dtype=np.float64)
    out = np.exp(-np.logaddexp(0.0, -x))
    return float(out) if out.ndim == 0 else out


class Direction(str, Enum):
    """Direction of propagation from the start frame."""

    FORWARD = "forward"
    BACKWARD = "backward"
    BOTH = "both"

    @classmethod
    def parse(cls, value: str | Direction) -> Direction:
        """Parse a direction, with a clear error for unknown values."""
        try:
            return cls(value)
        except ValueError:
            raise EngineError(
                f"unknown direction {value!r}: use 'forward', 'backward' or 'both'"
            ) from None


@dataclass(frozen=True)
class ObjectScore:
    """Model confidence for one object on one frame.

    Parameters
    ----------
    object_score_logit : float
        Logit of "the object is visible"; ``> 0`` means present.
    iou : float
        The model's predicted IoU of its mask (``nan`` when the engine has none).
    """

    object_score_logit: float
    iou: float = float("nan")

    @property
    def present(self) -> bool:
        """Whether the engine considers the object visible on this frame."""
        return self.object_score_logit > 0

    @property
    def probability(self) -> float:
        """The probability that the object is visible (see :func:`score_probability`)."""
        return score_probability(self.object_score_logit)


@dataclass
class FrameResult:
    """Masks and scores of every object on one frame.

    Parameters
    ----------
    frame : int
        Frame index.
    masks : dict of int to ndarray
        ``object_id -> (H, W) bool`` mask at the original frame resolution.
    scores : dict of int to ObjectScore
        ``object_id -> ObjectScore``.
    """

    frame: int
    masks: dict[int, np.ndarray] = field(default_factory=dict)
    scores: dict[int, ObjectScore] = field(default_factory=dict)

    def labels(self, shape: tuple[int, int] | None = None, dtype: Any = np.uint16) -> np.ndarray:
        """Compose the masks into one label image (see :func:`compose_labels`)."""
        return compose_labels(self.masks, self.scores, shape=shape, dtype=dtype)

    @property
    def empty_objects(self) -> list[int]:
        """Ids of the objects whose mask on this frame is empty, in id order."""
        return [oid for oid in sorted(self.masks) if not np.any(self.masks[oid])]

    def describe(self, names: Mapping[int, str] | None = None) -> str:
        """One line saying how large each object's mask is, and which came out empty.

        Parameters
        ----------
        names : mapping of int to str, optional
            Object names by id (ids are shown for the others).

        Returns
        -------
        str
            For example ``"frame 3: fish 1,204 px; no mask for crab"``.
        """
        names = names or {}
        found, empty = [], []
        for oid in sorted(self.masks):
            name = names.get(oid, f"object {oid}")
            pixels = int(np.count_nonzero(self.masks[oid]))
            if pixels:
                found.append(f"{name} {pixels:,} px")
            else:
                empty.append(name)
        parts = [", ".join(found)] if found else []
        if empty:
            parts.append(f"no mask for {', '.join(empty)}")
        return f"frame {self.frame}: {'; '.join(parts) or 'no objects'}"


def compose_labels(
    masks: dict[int, np.ndarray],
    scores: dict[int, ObjectScore] | None = None,
    *,
    shape: tuple[int, int] | None = None,
    dtype: Any = np.uint16,
) -> np.ndarray:
    """Combine per-object masks into one label image with a deterministic overlap rule.

    Where masks overlap, the object with the higher ``object_score_logit`` wins;
    ties (or missing scores) go to the lower object id. Objects whose score says
    "absent" still paint their mask (an engine that reports an absent object
    returns an empty mask for it).

    Parameters
    ----------
    masks : dict of int to ndarray
        ``object_id -> (H, W)`` boolean masks.
    scores : dict of int to ObjectScore, optional
        Scores used to resolve overlaps.
    shape : tuple of int, optional
        Output shape, required when ``masks`` is empty.
    dtype : numpy dtype, optional
        Integer dtype of the output.

    Returns
    -------
    ndarray
        ``(H, W)`` labels; 0 is background, otherwise the object id.
    """
    if not masks:
        if shape is None:
            raise ValueError("shape is required when there are no masks")
        return np.zeros(shape, dtype=dtype)
    scores = scores or {}

    def rank(oid: int) -> tuple[float, int]:
        score = scores.get(oid)
        logit = score.object_score_logit if score is not None else float("-inf")
        if not np.isfinite(logit):
            logit = float("-inf")
        return (-logit, oid)

    first = next(iter(masks.values()))
    out = np.zeros(shape or first.shape, dtype=dtype)
    # Paint lowest priority first so the winner is painted last.
    for oid in sorted(masks, key=rank, reverse=True):
        out[np.asarray(masks[oid], dtype=bool)] = oid
    return out


def propagation_order(
    n_frames: int,
    start: int,
    direction: Direction,
    frame_range: tuple[int, int] | None = None,
) -> list[tuple[int, Direction]]:
    """Frames visited by a propagation, in order, with the pass each belongs to.

    Parameters
    ----------
    n_frames : int
        Number of frames in the video.
    start : int
        Frame to start from (visited first).
    direction : Direction
        ``FORWARD`` visits ``start..hi``, ``BACKWARD`` visits ``start..lo`` and
        ``BOTH`` does the forward pass then the backward pass (``start`` once).
    frame_range : tuple of int, optional
        Inclusive ``(lo, hi)`` bounds; defaults to the whole video.

    Returns
    -------
    list of (int, Direction)
    """
    lo, hi = (0, n_frames - 1) if frame_range is None else frame_range
    if lo > hi:
        raise EngineError(
            f"frame range {lo}..{hi} starts after it ends: give the lower frame first"
        )
    if not (0 <= lo and hi < n_frames):
        raise EngineError(f"frame range {lo}..{hi} is not within the video's 0..{n_frames - 1}")
    if not lo <= start <= hi:
        raise EngineError(f"start frame {start} is outside the frame range ({lo}, {hi})")
    order: list[tuple[int, Direction]] = []
    if direction in (Direction.FORWARD, Direction.BOTH):
        order += [(f, Direction.FORWARD) for f in range(start, hi + 1)]
    if direction in (Direction.BACKWARD, Direction.BOTH):
        first = start if direction is Direction.BACKWARD else start - 1
        order += [(f, Direction.BACKWARD) for f in range(first, lo - 1, -1)]
    return order


@dataclass(frozen=True)
class EngineInfo:
    """Provenance of an engine, recorded in result stores.

    Parameters
    ----------
    engine : str
        ``"sam2"`` or ``"classic"``.
    model : str
        Model name or path (``""`` for engines without a model).
    model_hash : str
        Hash identifying the weights (``""`` when not applicable).
    device : str
        Device the engine computes on.
    random_weights : bool
        ``True`` for test models with random weights; their output is not a result.
    settings : dict
        Engine settings that influence the output.
    """

    engine: str
    model: str = ""
    model_hash: str = ""
    device: str = "cpu"
    random_weights: bool = False
    settings: dict[str, Any] = field(default_factory=dict)


class Engine(ABC):
    """Abstract video object-tracking engine.

    Subclasses implement prompting, propagation and state handling; this base
    class holds the video, validates prompts and provides the shared helpers.
    """

    #: Short name used by :func:`napari_sam2v.engines.create_engine`.
    name: ClassVar[str] = ""

    def __init__(self) -> None:
        self._frames: FrameNormalizer | None = None

    # -- video ---------------------------------------------------------------------
    def set_video(self, frames: Any, *, channel: int | None = None) -> None:
        """Attach a video and reset all prompts and state.

        Parameters
        ----------
        frames : array-like
            ``(t, y, x)`` or ``(t, y, x, c)`` frame-indexed array; read lazily.
        channel : int, optional
            Channel of multi-channel (non-RGB) data.
        """
        self._frames = FrameNormalizer(frames, channel=channel)
        self._on_video_set()

    @abstractmethod
    def _on_video_set(self) -> None:
        """Reset engine state for a newly attached video."""

    @property
    def frames(self) -> FrameNormalizer:
        """The attached video (raises if none)."""
        if self._frames is None:
            raise EngineError("no video: call set_video(frames) first")
        return self._frames

    @property
    def n_frames(self) -> int:
        """Number of frames of the attached video."""
        return self.frames.n_frames

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(height, width)`` of the attached video."""
        return self.frames.shape

    # -- prompts -------------------------------------------------------------------
    @property
    @abstractmethod
    def object_ids(self) -> list[int]:
        """Ids of objects that have at least one prompt, sorted."""

    @abstractmethod
    def add_prompt(self, prompt: Prompt) -> FrameResult:
        """Add a prompt and return the masks of all objects on its frame at once.

        A new prompt for an object on a frame replaces the earlier prompt for that
        object on that frame (points accumulate: pass all clicks of the frame).
        Adding a prompt on an already propagated frame refines it; propagating
        again from there replaces the downstream frames only.

        Raises
        ------
        PromptError
            If the prompt lies outside the video.
        """

    def add_prompts(self, prompts: Iterable[Prompt]) -> dict[int, FrameResult]:
        """Add several prompts; return the last result for each prompted frame."""
        results: dict[int, FrameResult] = {}
        for prompt in prompts:
            results[prompt.frame] = self.add_prompt(prompt)
        return results

    @abstractmethod
    def remove_object(self, object_id: int) -> None:
        """Forget an object and all its prompts and results.

        Raises
        ------
        EngineError
            If the object id is unknown.
        """

    @abstractmethod
    def clear_frame(self, frame: int, object_id: int | None = None) -> None:
        """Remove the prompts on ``frame`` (of one object, or of all objects)."""

    def prefetch(self, frame: int) -> None:
        """Prepare ``frame`` so that a later click on it is fast (may be a no-op)."""
        self.check_frame(frame)

    @abstractmethod
    def propagate(
        self,
        *,
        start: int | None = None,
        direction: str | Direction = Direction.FORWARD,
        frame_range: tuple[int, int] | None = None,
        cancel: threading.Event | None = None,
    ) -> Generator[FrameResult, None, None]:
        """Propagate the prompts through the video.

        Parameters
        ----------
        start : int, optional
            Frame to start from. Defaults to the first prompted frame (forward,
            both) or the last prompted frame (backward).
        direction : {"forward", "backward", "both"}
            See :func:`propagation_order`.
        frame_range : tuple of int, optional
            Inclusive ``(lo, hi)`` frame bounds.
        cancel : threading.Event, optional
            When set, propagation stops before the next frame.

        Yields
        ------
        FrameResult
            One per visited frame, in visiting order.
        """

    @abstractmethod
    def reset(self) -> None:
        """Drop every prompt and result, keeping the video and the model."""

    @property
    @abstractmethod
    def info(self) -> EngineInfo:
        """Provenance of this engine."""

    def close(self) -> None:  # noqa: B027 - optional hook, default does nothing
        """Release resources (models, caches). The engine is unusable afterwards."""

    # -- helpers for subclasses ----------------------------------------------------
    def check_frame(self, frame: int) -> int:
        """Validate a frame index against the attached video."""
        n = self.n_frames
        if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)):
            raise PromptError(f"frame index must be an integer, got {frame!r}")
        if not 0 <= frame < n:
            raise PromptError(f"frame {frame} is beyond the video ({n} frames, indices 0..{n - 1})")
        return int(frame)

    def check_prompt(self, prompt: Prompt) -> None:
        """Validate a prompt against the attached video."""
        prompt.check_bounds(self.frame_shape, self.n_frames)

    def check_object(self, object_id: int) -> None:
        """Raise :class:`EngineError` for an unknown object id."""
        if object_id not in self.object_ids:
            raise EngineError(
                f"unknown object id {object_id}; known objects: {self.object_ids or 'none'}"
            )

    def resolve_start(
        self, start: int | None, direction: Direction, prompted_frames: list[int]
    ) -> int:
        """Default start frame for a propagation (see :meth:`propagate`)."""
        if not prompted_frames:
            raise EngineError("nothing to propagate: add a prompt first")
        if start is None:
            return max(prompted_frames) if direction is Direction.BACKWARD else min(prompted_frames)
        return self.check_frame(start)
