"""The weights-free classic engine: seeded local thresholding and overlap tracking.

See ``docs/engines.md`` for the method, its confidence score and when to prefer
it over SAM 2.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Generator
from typing import ClassVar

import numpy as np

from napari_sam2v.engines.base import (
    Direction,
    Engine,
    EngineInfo,
    FrameResult,
    ObjectScore,
    propagation_order,
)
from napari_sam2v.engines.classic.features import Appearance, FrameView
from napari_sam2v.engines.classic.geometry import CropMask, Window
from napari_sam2v.engines.classic.overlaps import resolve_overlaps
from napari_sam2v.engines.classic.seeding import (
    Seed,
    offers_phase,
    points_in_window,
    seed_from_prompt,
)
from napari_sam2v.engines.classic.settings import ClassicSettings
from napari_sam2v.engines.classic.tracking import ABSENT_LOGIT, TrackState, track_step
from napari_sam2v.errors import EngineError
from napari_sam2v.prompts import Prompt

__all__ = ["ClassicEngine"]

_Entry = tuple[CropMask | None, ObjectScore]


def _clicks_alone(prompt: Prompt | None) -> bool:
    """Whether ``prompt`` is clicks without a box or a mask."""
    return (
        prompt is not None
        and prompt.points is not None
        and prompt.box is None
        and prompt.mask is None
    )


def _takes_markers(seed: Seed | None, prompt: Prompt | None) -> bool:
    """Whether a seed is a ``phase`` watershed of clicks alone.

    Only those seeds use other objects' markers, so only they are worth segmenting
    again when the markers on their frame change (a box or mask seed would come
    out the same).
    """
    return seed is not None and seed.appearance.feature == "phase" and _clicks_alone(prompt)


def _may_take_markers(prompt: Prompt, view: FrameView, settings: ClassicSettings) -> bool:
    """Whether a seed of ``prompt`` could become a ``phase`` watershed of clicks alone.

    Decided before segmenting, so that the other objects' marker points (a distance
    transform per tracked mask) are computed only for prompts that can use them.
    """
    return offers_phase(view, settings) and _clicks_alone(prompt)


def _seed_score(seed: Seed) -> ObjectScore:
    """Score of a prompted frame: positive when something was segmented."""
    if seed.mask is None:
        return ObjectScore(ABSENT_LOGIT, 0.0)
    return ObjectScore(2.0 + 8.0 * seed.quality, seed.quality)


class ClassicEngine(Engine):
    """Track clicked objects with scikit-image: no weights, no GPU, real time.

    Each prompt is segmented by a local threshold of a feature (grey level,
    local texture or colour distance, chosen from the prompt) around the clicks or
    the box, or, for phase-contrast cells, by a marker watershed of the grey image
    between halo ridges; propagation re-segments a motion-shifted search window on
    every frame and keeps what overlaps the previous mask.

    Parameters
    ----------
    feature : {"auto", "bright", "dark", "texture", "phase", "color"}, optional
        Feature to threshold; ``"auto"`` decides per object from its prompt.
    cache_frames : int, optional
        Number of normalised frames kept in memory.
    **options
        Further tuning options, see
        :class:`~napari_sam2v.engines.classic.settings.ClassicSettings`.

    Raises
    ------
    EngineError
        For unknown or invalid options.

    Examples
    --------
    >>> import numpy as np
    >>> from napari_sam2v.engines import create_engine
    >>> from napari_sam2v.prompts import Prompt
    >>> video = np.zeros((3, 32, 32), np.uint8)
    >>> video[:, 10:20, 10:20] = 200
    >>> engine = create_engine("classic")
    >>> engine.set_video(video)
    >>> int(engine.add_prompt(Prompt(0, 1, points=[[15, 15]])).masks[1].sum())
    100
    """

    name: ClassVar[str] = "classic"

    def __init__(self, *, feature: str = "auto", cache_frames: int = 4, **options: object) -> None:
        super().__init__()
        known = set(ClassicSettings.__dataclass_fields__)
        unknown = sorted(set(options) - known)
        if unknown:
            raise EngineError(
                f"classic engine: unknown option(s) {', '.join(unknown)}; "
                f"known options: feature, cache_frames, {', '.join(sorted(known - {'feature'}))}"
            )
        if isinstance(cache_frames, bool) or not isinstance(cache_frames, int) or cache_frames < 1:
            raise EngineError(f"classic engine: cache_frames must be >= 1, got {cache_frames!r}")
        self.settings = ClassicSettings(feature=feature, **options)  # type: ignore[arg-type]
        self._cache_size = cache_frames
        self._cache: OrderedDict[int, FrameView] = OrderedDict()
        self._prompts: dict[int, dict[int, Prompt]] = {}
        self._seeds: dict[int, dict[int, Seed]] = {}
        self._results: dict[int, dict[int, _Entry]] = {}
        self._lock = threading.RLock()

    # -- state ---------------------------------------------------------------------
    def _on_video_set(self) -> None:
        self._cache.clear()
        self.reset()

    def reset(self) -> None:
        """Drop every prompt and result, keeping the video."""
        with self._lock:
            self._prompts.clear()
            self._seeds.clear()
            self._results.clear()

    def close(self) -> None:
        """Release the frame cache and all state."""
        with self._lock:
            self._cache.clear()
            self.reset()

    @property
    def object_ids(self) -> list[int]:
        """Ids of objects with at least one prompt, sorted."""
        return sorted(oid for oid, frames in self._prompts.items() if frames)

    @property
    def info(self) -> EngineInfo:
        """Provenance: engine name, CPU device and the tuning settings."""
        settings = {**self.settings.to_dict(), "cache_frames": self._cache_size}
        return EngineInfo(engine=self.name, device="cpu", settings=settings)

    def _view(self, frame: int) -> FrameView:
        with self._lock:
            view = self._cache.get(frame)
            if view is not None:
                self._cache.move_to_end(frame)
                return view
        frames = self.frames
        gray = frames.gray_frame(frame)
        loader = (lambda: frames.rgb_frame(frame)) if frames.rgb else None
        view = FrameView(gray, loader)
        with self._lock:
            self._cache[frame] = view
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return view

    # -- prompts -------------------------------------------------------------------
    def add_prompt(self, prompt: Prompt) -> FrameResult:
        """Segment ``prompt`` on its frame and return every object's mask there.

        See :meth:`napari_sam2v.engines.base.Engine.add_prompt`.
        """
        self.frames  # noqa: B018 - raises EngineError without a video
        self.check_prompt(prompt)
        view = self._view(prompt.frame)
        oid, frame = prompt.object_id, prompt.frame
        with self._lock:
            others = (
                self._markers_on(frame, prompt)
                if _may_take_markers(prompt, view, self.settings)
                else None
            )
        seed = seed_from_prompt(view, prompt, self.settings, others=others)
        with self._lock:
            self._prompts.setdefault(oid, {})[frame] = prompt
            self._store_seed(oid, frame, seed)
            self._reseed_flooded(view, prompt)
            return self._frame_result(frame)

    def _store_seed(self, oid: int, frame: int, seed: Seed) -> None:
        self._seeds.setdefault(oid, {})[frame] = seed
        self._results.setdefault(oid, {})[frame] = (seed.mask, _seed_score(seed))

    def _clicks_on(self, frame: int, *, exclude: int) -> np.ndarray:
        """``[x, y]`` positive clicks of every object but ``exclude`` on ``frame``."""
        points = [
            prompt.points[prompt.labels == 1]
            for oid, frames in self._prompts.items()
            if oid != exclude
            and (prompt := frames.get(frame)) is not None
            and prompt.points is not None
            and prompt.mask is None
        ]
        return np.concatenate(points) if points else np.zeros((0, 2))

    def _neighbour_points(self, frame: int, prompt: Prompt) -> np.ndarray:
        """``[x, y]`` deepest points of the other objects' unprompted masks on ``frame``.

        These are tracked (or earlier propagated) masks; each gives a watershed
        marker to a ``phase`` seed, as a click would, so that a cell clicked next to
        tracked cells cannot flood them. A mask that covers one of the prompt's
        positive clicks is left out: it has leaked onto the clicked object (or it is
        a mother cell tracked over both daughters, one of which is now clicked).
        """
        where, labels = prompt.clicks
        clicks = where[labels == 1]
        points = [
            crop.deepest_point()
            for oid, results in self._results.items()
            if oid != prompt.object_id
            and frame not in self._prompts.get(oid, {})
            and (crop := results.get(frame, (None, None))[0]) is not None
            and not crop.contains(clicks)
        ]
        return np.array(points, float).reshape(-1, 2)

    def _markers_on(self, frame: int, prompt: Prompt) -> np.ndarray:
        """Every other object's marker point for a seed of ``prompt`` on ``frame``."""
        return np.concatenate(
            [
                self._clicks_on(frame, exclude=prompt.object_id),
                self._neighbour_points(frame, prompt),
            ]
        )

    def _reseed_flooded(self, view: FrameView, prompt: Prompt) -> None:
        """Re-segment the ``phase`` seeds on the prompt's frame that meet the new object.

        Objects clicked earlier on the same frame were segmented without this
        object's marker: a seed that covers its clicks or overlaps its new mask is
        segmented again, now with every object's clicks as markers.
        """
        frame = prompt.frame
        new = self._seeds[prompt.object_id][frame].mask
        if prompt.points is None and new is None:
            return
        touched = np.zeros(view.shape, bool)
        if new is not None:
            new.paste(touched)
        if prompt.points is not None:
            frame_window = Window(0, 0, *view.shape)
            touched[points_in_window(frame_window, prompt.points[prompt.labels == 1])] = True
        for oid, seeds in self._seeds.items():
            seed = seeds.get(frame)
            own = self._prompts.get(oid, {}).get(frame)
            if oid == prompt.object_id or seed is None or own is None or seed.mask is None:
                continue
            if not _takes_markers(seed, own):
                continue
            if not touched[seed.mask.y0 : seed.mask.y1, seed.mask.x0 : seed.mask.x1][
                seed.mask.mask
            ].any():
                continue
            others = self._markers_on(frame, own)
            self._store_seed(oid, frame, seed_from_prompt(view, own, self.settings, others=others))

    def remove_object(self, object_id: int) -> None:
        """Forget ``object_id``, its prompts and its results."""
        with self._lock:
            self.check_object(object_id)
            for store in (self._prompts, self._seeds, self._results):
                store.pop(object_id, None)

    def clear_frame(self, frame: int, object_id: int | None = None) -> None:
        """Remove the prompts (and their results) on ``frame``.

        An object left without any prompt is forgotten entirely.
        """
        frame = self.check_frame(frame)
        with self._lock:
            ids = self.object_ids if object_id is None else [object_id]
            if object_id is not None:
                self.check_object(object_id)
            for oid in ids:
                self._prompts.get(oid, {}).pop(frame, None)
                self._seeds.get(oid, {}).pop(frame, None)
                self._results.get(oid, {}).pop(frame, None)
                if not self._prompts.get(oid):
                    for store in (self._prompts, self._seeds, self._results):
                        store.pop(oid, None)

    # -- results -------------------------------------------------------------------
    def _frame_result(self, frame: int) -> FrameResult:
        shape = self.frame_shape
        result = FrameResult(frame=frame)
        for oid in self.object_ids:
            crop, score = self._results.get(oid, {}).get(frame, (None, None))
            result.masks[oid] = crop.full(shape) if crop is not None else np.zeros(shape, bool)
            result.scores[oid] = score if score is not None else ObjectScore(ABSENT_LOGIT, 0.0)
        return result

    def _initial_state(self, oid: int, frame: int, step: int) -> TrackState | None:
        """Memory for ``oid`` from the nearest present mask behind ``frame``."""
        seeds, results = self._seeds.get(oid, {}), self._results.get(oid, {})
        behind = [f for f in results if (f - frame) * step < 0 and results[f][0] is not None]
        if not behind:
            return None
        source = max(behind) if step > 0 else min(behind)
        crop = results[source][0]
        if crop is None:
            return None
        return TrackState(crop, self._appearance(source, step, seeds), gap=abs(frame - source))

    @staticmethod
    def _appearance(frame: int, step: int, seeds: dict[int, Seed]) -> Appearance:
        """Appearance from the latest prompt at or behind ``frame`` (else the nearest)."""
        behind = [f for f in seeds if (f - frame) * step <= 0]
        pool = behind or list(seeds)
        source = min(pool, key=lambda f: abs(f - frame))
        return seeds[source].appearance

    def propagate(
        self,
        *,
        start: int | None = None,
        direction: str | Direction = Direction.FORWARD,
        frame_range: tuple[int, int] | None = None,
        cancel: threading.Event | None = None,
    ) -> Generator[FrameResult, None, None]:
        """Propagate the prompts (see :meth:`napari_sam2v.engines.base.Engine.propagate`).

        A prompted frame re-seeds its object; other frames are tracked from the
        previous frame of the pass. The first frame of a pass reuses a stored
        result when there is one, otherwise it is tracked from the nearest known
        mask behind it.
        """
        dirn = Direction.parse(direction)
        prompted = sorted({f for frames in self._prompts.values() for f in frames})
        first = self.resolve_start(start, dirn, prompted)
        order = propagation_order(self.n_frames, first, dirn, frame_range)
        return self._run(order, cancel)

    def _run(
        self, order: list[tuple[int, Direction]], cancel: threading.Event | None
    ) -> Generator[FrameResult, None, None]:
        states: dict[int, TrackState | None] = {}
        current: Direction | None = None
        for index, (frame, pass_dir) in enumerate(order):
            if cancel is not None and cancel.is_set():
                return
            step = 1 if pass_dir is Direction.FORWARD else -1
            view = self._view(frame)
            new_pass = pass_dir is not current
            current = pass_dir
            with self._lock:
                ids = self.object_ids
                before: dict[int, CropMask | None] = {}
                predicted: dict[int, CropMask] = {}
                for oid in ids:
                    state = states.get(oid)
                    before[oid] = state.last_seen if state is not None else None
                    seed = self._seeds[oid].get(frame)
                    if seed is not None and seed.mask is not None:
                        predicted[oid] = seed.mask
                    elif state is not None and state.gap == 1:
                        shift = state.velocity * self.settings.motion_damping
                        predicted[oid] = state.last_seen.shifted(*shift)
                for oid in ids:
                    others = [mask for other, mask in predicted.items() if other != oid]
                    states[oid] = self._advance(
                        oid, frame, step, view, states.get(oid), new_pass, index == 0, others
                    )
                self._reseed_among_tracked(frame, view, ids, states)
                if len(ids) > 1:
                    self._separate(frame, view, ids, states, before)
                result = self._frame_result(frame)
            yield result

    def _reseed_among_tracked(
        self, frame: int, view: FrameView, ids: list[int], states: dict[int, TrackState | None]
    ) -> None:
        """Segment this frame's ``phase`` click seeds again among the tracked cells.

        A cell clicked on a frame where other objects are only tracked (a daughter
        appearing after a division) was seeded with their stored masks of the last
        propagation at most; this pass's tracked masks now give each of them a marker.
        """
        for oid in ids:
            prompt = self._prompts[oid].get(frame)
            if prompt is None or not _takes_markers(self._seeds[oid].get(frame), prompt):
                continue
            neighbours = self._neighbour_points(frame, prompt)
            if not len(neighbours):
                continue  # no tracked neighbour on this frame: the seed stands
            others = np.concatenate([self._clicks_on(frame, exclude=oid), neighbours])
            new = seed_from_prompt(view, prompt, self.settings, others=others)
            if new.mask is None:
                continue
            self._store_seed(oid, frame, new)
            state = states.get(oid)
            velocity = state.velocity if state is not None else np.zeros(2)
            states[oid] = TrackState(new.mask, new.appearance, velocity=velocity)

    def _separate(
        self,
        frame: int,
        view: FrameView,
        ids: list[int],
        states: dict[int, TrackState | None],
        before: dict[int, CropMask | None],
    ) -> None:
        """Make this frame's masks disjoint and update the objects' memories."""
        masks = {oid: self._results[oid][frame][0] for oid in ids}
        if sum(m is not None for m in masks.values()) < 2:
            return
        damping = self.settings.motion_damping
        predictions: dict[int, CropMask | None] = {}
        appearances = {}
        for oid in ids:
            state = states[oid]
            ref = before[oid]
            predictions[oid] = None
            if state is not None and ref is not None:
                predictions[oid] = ref.shifted(*(state.velocity * damping))
            appearances[oid] = (
                state.appearance
                if state is not None
                else self._appearance(frame, 1, self._seeds[oid])
            )
        fixed = {oid for oid in ids if frame in self._seeds[oid]}
        resolved = resolve_overlaps(view, masks, predictions, appearances, fixed=fixed)
        for oid in ids:
            new = resolved[oid]
            if new is masks[oid]:
                continue
            score = self._results[oid][frame][1]
            if new is None:
                score = ObjectScore(min(score.object_score_logit, -1.0), score.iou)
            self._results[oid][frame] = (new, score)
            state = states[oid]
            if state is not None and new is not None:
                ref = before[oid]
                if ref is not None and state.gap == 1:
                    state.velocity = new.centroid - ref.centroid
                state.last_seen = new

    def _advance(
        self,
        oid: int,
        frame: int,
        step: int,
        view: FrameView,
        state: TrackState | None,
        new_pass: bool,
        first: bool,
        others: list[CropMask],
    ) -> TrackState | None:
        """Compute and store ``oid`` on ``frame``; return its updated memory."""
        seeds = self._seeds[oid]
        results = self._results.setdefault(oid, {})
        if frame in seeds:
            seed = seeds[frame]
            results[frame] = (seed.mask, _seed_score(seed))
            if seed.mask is None:
                return state
            velocity = state.velocity if state is not None else np.zeros(2)
            return TrackState(seed.mask, seed.appearance, velocity=velocity)
        if new_pass:
            stored = results.get(frame)
            if first and stored is not None and stored[0] is not None:
                return TrackState(stored[0], self._appearance(frame, step, seeds))
            state = self._initial_state(oid, frame, step)
        if state is None:
            results[frame] = (None, ObjectScore(ABSENT_LOGIT, 0.0))
            return None
        crop, score = track_step(view, state, self.settings, others=others)
        results[frame] = (crop, score)
        return state
