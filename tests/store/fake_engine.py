"""A small deterministic engine for store tests: thresholding + nearest-blob tracking.

It is stateful like SAM 2 (each frame's mask depends on the previous frame's
centroid), so resume tests would catch a resume that started mid-video.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
from scipy import ndimage

from napari_sam2v.engines.base import (
    Direction,
    Engine,
    EngineInfo,
    FrameResult,
    ObjectScore,
    propagation_order,
)
from napari_sam2v.prompts import Prompt


class FakeEngine(Engine):
    """Segment bright blobs; follow each object to the blob nearest its last centroid.

    Parameters
    ----------
    sleep : float
        Seconds to sleep per propagated frame (lets tests kill a run mid-way).
    random_weights : bool
        Reported in :attr:`info` (to test the store's flag).
    """

    name = "fake"

    def __init__(self, *, sleep: float = 0.0, random_weights: bool = False) -> None:
        super().__init__()
        self.sleep = sleep
        self.random_weights = random_weights
        self._prompts: dict[int, Prompt] = {}
        self.closed = False

    def _on_video_set(self) -> None:
        self._prompts = {}

    @property
    def object_ids(self) -> list[int]:
        return sorted(self._prompts)

    def _segment(self, frame: int) -> tuple[np.ndarray, int]:
        gray = self.frames.gray_frame(frame)
        return ndimage.label(gray > 0.5)

    def _mask_near(self, frame: int, yx: tuple[float, float]) -> np.ndarray:
        labels, n = self._segment(frame)
        if n == 0:
            return np.zeros(self.frame_shape, bool)
        centres = ndimage.center_of_mass(np.ones_like(labels), labels, range(1, n + 1))
        dists = [np.hypot(cy - yx[0], cx - yx[1]) for cy, cx in centres]
        best = int(np.argmin(dists))
        if dists[best] > 30:
            return np.zeros(self.frame_shape, bool)
        return labels == best + 1

    def add_prompt(self, prompt: Prompt) -> FrameResult:
        self.check_prompt(prompt)
        self._prompts[prompt.object_id] = prompt
        x, y = prompt.points[0]
        mask = self._mask_near(prompt.frame, (y, x))
        return FrameResult(
            prompt.frame, {prompt.object_id: mask}, {prompt.object_id: ObjectScore(4.0, 0.9)}
        )

    def remove_object(self, object_id: int) -> None:
        self.check_object(object_id)
        del self._prompts[object_id]

    def clear_frame(self, frame: int, object_id: int | None = None) -> None:
        for oid in [o for o, p in self._prompts.items() if p.frame == frame]:
            if object_id is None or oid == object_id:
                del self._prompts[oid]

    def propagate(
        self,
        *,
        start: int | None = None,
        direction: str | Direction = Direction.FORWARD,
        frame_range: tuple[int, int] | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[FrameResult]:
        direction = Direction.parse(direction)
        first = self.resolve_start(
            start, direction, sorted({p.frame for p in self._prompts.values()})
        )
        centres = {oid: (p.points[0][1], p.points[0][0]) for oid, p in self._prompts.items()}
        last_pass = None
        for frame, pass_ in propagation_order(self.n_frames, first, direction, frame_range):
            if cancel is not None and cancel.is_set():
                return
            if pass_ != last_pass:
                current = dict(centres)
                last_pass = pass_
            masks, scores = {}, {}
            for oid in self.object_ids:
                mask = self._mask_near(frame, current[oid])
                masks[oid] = mask
                if mask.any():
                    current[oid] = ndimage.center_of_mass(mask)
                    scores[oid] = ObjectScore(float(mask.sum()) / 100.0, 0.5 + oid / 10)
                else:
                    scores[oid] = ObjectScore(-3.0, float("nan"))
            if self.sleep:
                time.sleep(self.sleep)
            yield FrameResult(frame, masks, scores)

    def reset(self) -> None:
        self._prompts = {}

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(
            engine="fake",
            model="threshold",
            model_hash="0" * 8,
            random_weights=self.random_weights,
            # The delay changes speed, not masks: like num_threads, it is no setting.
            settings={"threshold": 0.5},
        )

    def close(self) -> None:
        self.closed = True
