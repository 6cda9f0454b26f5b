"""Prompt value types: what a user's clicks, boxes and masks mean to an engine.

Coordinates are pixels of the *original* frame: ``x`` is the column and ``y`` the
row. Label 1 is foreground (positive) and 0 is background (negative).

The file formats (versioned JSON, CSV of clicks) live in :mod:`napari_sam2v.io.prompt_files`;
this module holds only the in-memory types shared by engines, store, widget and CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from napari_sam2v.errors import PromptError
from napari_sam2v.types import ObjectInfo

__all__ = ["Prompt", "PromptSet"]


def _as_points(points: object, what: str) -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 1 and arr.size == 2:
        arr = arr.reshape(1, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise PromptError(f"{what}: points must be a list of [x, y] pairs, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise PromptError(f"{what}: points contain NaN or infinite coordinates")
    return arr


@dataclass(frozen=True, eq=False, init=False)
class Prompt:
    """One prompt for one object on one frame.

    A prompt holds points (with labels), a box, a mask, or points together with a box.

    Parameters
    ----------
    frame : int
        Frame index (0-based) the prompt is placed on.
    object_id : int
        Id of the object the prompt refers to (positive integer).
    points : array-like of shape (N, 2), optional
        ``[x, y]`` pixel coordinates in the original frame.
    labels : array-like of shape (N,), optional
        1 for foreground, 0 for background; defaults to all 1.
    box : array-like of shape (4,), optional
        ``[x0, y0, x1, y1]`` in pixels, ``x0 < x1`` and ``y0 < y1``.
    mask : ndarray of shape (H, W), optional
        Boolean mask prompt at the original frame resolution.

    Raises
    ------
    PromptError
        If the prompt is empty or malformed.
    """

    frame: int
    object_id: int
    points: np.ndarray | None
    labels: np.ndarray | None
    box: np.ndarray | None
    mask: np.ndarray | None

    def __init__(
        self,
        frame: int,
        object_id: int,
        points: npt.ArrayLike | None = None,
        labels: npt.ArrayLike | None = None,
        box: npt.ArrayLike | None = None,
        mask: npt.ArrayLike | None = None,
    ) -> None:
        # Array-likes go in; validated numpy arrays are kept (see _validate).
        for name, value in (
            ("frame", frame),
            ("object_id", object_id),
            ("points", points),
            ("labels", labels),
            ("box", box),
            ("mask", mask),
        ):
            object.__setattr__(self, name, value)
        self._validate()

    def _validate(self) -> None:
        where = f"prompt (frame {self.frame!r}, object {self.object_id!r})"
        if isinstance(self.frame, bool) or not isinstance(self.frame, (int, np.integer)):
            raise PromptError(f"{where}: frame must be an integer")
        if self.frame < 0:
            raise PromptError(f"{where}: frame must be >= 0")
        if (
            isinstance(self.object_id, bool)
            or not isinstance(self.object_id, (int, np.integer))
            or self.object_id < 1
        ):
            raise PromptError(f"{where}: object id must be a positive integer")
        object.__setattr__(self, "frame", int(self.frame))
        object.__setattr__(self, "object_id", int(self.object_id))
        if self.points is None and self.box is None and self.mask is None:
            raise PromptError(f"{where}: empty prompt (no points, box or mask)")
        if self.points is not None:
            pts = _as_points(self.points, where)
            if len(pts) == 0 and self.box is None and self.mask is None:
                raise PromptError(f"{where}: empty prompt (no points, box or mask)")
            labels = (
                np.ones(len(pts), dtype=np.int64)
                if self.labels is None
                else np.asarray(self.labels).reshape(-1)
            )
            if labels.shape[0] != pts.shape[0]:
                raise PromptError(f"{where}: {pts.shape[0]} points but {labels.shape[0]} labels")
            if not np.all(np.isin(labels, (0, 1))) or labels.dtype.kind not in "biuf":
                raise PromptError(f"{where}: labels must be 0 (background) or 1 (foreground)")
            object.__setattr__(self, "points", pts)
            object.__setattr__(self, "labels", labels.astype(np.int64))
        elif self.labels is not None:
            raise PromptError(f"{where}: labels given without points")
        if self.box is not None:
            box = np.asarray(self.box, dtype=np.float64).reshape(-1)
            if box.shape != (4,) or not np.all(np.isfinite(box)):
                raise PromptError(f"{where}: box must be four finite numbers [x0, y0, x1, y1]")
            if not (box[0] < box[2] and box[1] < box[3]):
                raise PromptError(f"{where}: box needs x0 < x1 and y0 < y1, got {box.tolist()}")
            object.__setattr__(self, "box", box)
        if self.mask is not None:
            mask = np.asarray(self.mask)
            if mask.ndim != 2:
                raise PromptError(f"{where}: mask must be 2-D (H, W), got shape {mask.shape}")
            if not mask.any():
                raise PromptError(f"{where}: mask prompt is empty")
            object.__setattr__(self, "mask", mask.astype(bool, copy=False))

    @property
    def clicks(self) -> tuple[np.ndarray, np.ndarray]:
        """``(points, labels)``: the clicks' ``(N, 2)`` coordinates and their labels.

        Both are empty (N = 0) for a prompt without points.
        """
        if self.points is None or self.labels is None:
            return np.empty((0, 2), np.float64), np.empty(0, np.int64)
        return self.points, self.labels

    @property
    def kind(self) -> str:
        """``"points"``, ``"box"``, ``"box+points"`` or ``"mask"``."""
        if self.mask is not None:
            return "mask"
        if self.box is not None and self.points is not None and len(self.points):
            return "box+points"
        return "box" if self.box is not None else "points"

    def check_bounds(self, frame_shape: tuple[int, int], n_frames: int | None = None) -> None:
        """Check that the prompt lies inside a video of the given size.

        Parameters
        ----------
        frame_shape : tuple of int
            ``(height, width)`` of the frames.
        n_frames : int, optional
            Number of frames; checked when given.

        Raises
        ------
        PromptError
            If the frame index or any coordinate is out of range.
        """
        where = f"prompt (frame {self.frame}, object {self.object_id})"
        height, width = int(frame_shape[0]), int(frame_shape[1])
        if n_frames is not None and self.frame >= n_frames:
            raise PromptError(
                f"{where}: frame {self.frame} is beyond the end of the video "
                f"({n_frames} frames, last index {n_frames - 1})"
            )
        if self.points is not None and len(self.points):
            x, y = self.points[:, 0], self.points[:, 1]
            bad = (x < 0) | (y < 0) | (x > width - 1) | (y > height - 1)
            if bad.any():
                px, py = self.points[int(np.argmax(bad))]
                raise PromptError(
                    f"{where}: point ({px:g}, {py:g}) is outside the {width}x{height} frame"
                )
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
                raise PromptError(
                    f"{where}: box {self.box.tolist()} is outside the {width}x{height} frame"
                )
        if self.mask is not None and self.mask.shape != (height, width):
            raise PromptError(
                f"{where}: mask shape {self.mask.shape} does not match frame {(height, width)}"
            )


@dataclass
class PromptSet:
    """An ordered collection of objects and their prompts.

    This is the in-memory form of a prompt file. :mod:`napari_sam2v.io.prompt_files`
    reads and writes it (``Prompts`` is the public name of that file-backed class).

    Parameters
    ----------
    objects : list of ObjectInfo
        Objects, each with a unique id.
    prompts : list of Prompt
        Prompts, in the order they were given.
    """

    objects: list[ObjectInfo] = field(default_factory=list)
    prompts: list[Prompt] = field(default_factory=list)

    def __post_init__(self) -> None:
        ids = [o.id for o in self.objects]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise PromptError(f"duplicate object ids: {sorted(dup)}")
        known = set(ids)
        for prompt in self.prompts:
            if prompt.object_id not in known:
                self.objects.append(ObjectInfo(prompt.object_id))
                known.add(prompt.object_id)

    def __iter__(self) -> Iterator[Prompt]:
        return iter(self.prompts)

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def object_ids(self) -> list[int]:
        """Ids of all objects, in order."""
        return [o.id for o in self.objects]

    def object(self, object_id: int) -> ObjectInfo:
        """Return the :class:`ObjectInfo` of ``object_id``."""
        for obj in self.objects:
            if obj.id == object_id:
                return obj
        raise PromptError(f"unknown object id {object_id}")

    def frames(self) -> list[int]:
        """Sorted frame indices that carry prompts."""
        return sorted({p.frame for p in self.prompts})

    def for_frame(self, frame: int) -> list[Prompt]:
        """Prompts placed on ``frame``."""
        return [p for p in self.prompts if p.frame == frame]

    def add(self, prompt: Prompt) -> None:
        """Append a prompt, registering its object when new."""
        if prompt.object_id not in self.object_ids:
            self.objects.append(ObjectInfo(prompt.object_id))
        self.prompts.append(prompt)

    def extend(self, prompts: Iterable[Prompt]) -> None:
        """Append several prompts."""
        for prompt in prompts:
            self.add(prompt)

    def check_bounds(self, frame_shape: Sequence[int], n_frames: int | None = None) -> None:
        """Check every prompt against a video's size (see :meth:`Prompt.check_bounds`)."""
        if not self.prompts:
            raise PromptError("the prompt list is empty: add at least one click, box or mask")
        for prompt in self.prompts:
            prompt.check_bounds((int(frame_shape[0]), int(frame_shape[1])), n_frames)
