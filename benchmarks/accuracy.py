"""Accuracy harness: run an engine on a video with ground truth and score it.

Prompts are generated from the ground truth: one positive click on each object's
first frame, at the interior point furthest from its boundary (maximum of the
Euclidean distance transform), optionally with the object's bounding box.
Scores follow the DAVIS protocol:

* **J** (region similarity): IoU of the predicted and true masks;
* **F** (boundary F-measure): precision and recall of the predicted boundary
  against the true one, with a tolerance of ``0.008 x image diagonal`` pixels;
* **identity switches**: frames on which an object's mask mostly covers a
  different true object than on the previous scored frame.

Frames where both the prediction and the truth are empty count as J = F = 1.
Scores cover every frame from the prompt frame to the end.

Two references put a score in context: ``--mask`` prompts with each object's true
mask (an oracle seed, so the score is what tracking loses), and every run also
reports :func:`overlap_following`, the score of a perfect segmentation that follows
the ground truth by overlap (what the ground truth's own id changes cost).

Usage::

    python -m benchmarks.accuracy --sample t98g --engine classic --max-objects 10
    python -m benchmarks.accuracy --sample reef --crop 0:256,0:256 --frames 10
    python -m benchmarks.accuracy --sample t98g --max-objects 10 --mask

The metrics are in :mod:`benchmarks.metrics` and the data loaders in
:mod:`benchmarks.datasets`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.datasets import T98G_DIR, load_reef_truth, load_t98g
from benchmarks.metrics import boundary_f_measure, boundary_tolerance, jaccard
from napari_sam2v.engines import Engine, create_engine
from napari_sam2v.prompts import Prompt
from napari_sam2v.samples._common import interior_points

__all__ = [
    "ObjectScores",
    "Report",
    "evaluate",
    "first_frame_prompts",
    "main",
    "overlap_following",
    "per_frame_agreement",
]


RESULTS_DIR = Path(__file__).resolve().parent / "results"


def first_frame_prompts(
    labels: np.ndarray,
    *,
    ids: Sequence[int] | None = None,
    max_objects: int | None = None,
    box: bool = False,
    mask: bool = False,
) -> list[Prompt]:
    """One click per object at its deepest interior point on its first frame.

    With ``mask=True`` the prompt is the object's true mask on that frame instead:
    an oracle seed, which separates what a tracker loses over time from what its
    first-frame segmentation loses.

    Parameters
    ----------
    labels : ndarray
        ``(t, y, x)`` ground-truth ids (0 = background).
    ids : sequence of int, optional
        Objects to prompt; default: every id, in increasing order.
    max_objects : int, optional
        Keep only the first ``max_objects`` of them.
    box : bool, optional
        Also give the object's bounding box on that frame.
    mask : bool, optional
        Give the object's true mask on that frame instead of a click (and box).

    Returns
    -------
    list of Prompt

    Raises
    ------
    ValueError
        If an id does not occur, or if both ``box`` and ``mask`` are asked for.
    """
    if box and mask:
        raise ValueError("a mask prompt already fixes the object; do not add a box to it")
    labels = np.asarray(labels)
    all_ids = [int(i) for i in np.unique(labels) if i != 0] if ids is None else list(ids)
    if max_objects is not None:
        all_ids = all_ids[:max_objects]
    prompts = []
    for oid in all_ids:
        present = np.flatnonzero((labels == oid).any(axis=(1, 2)))
        if present.size == 0:
            raise ValueError(f"object {oid} does not occur in the ground truth")
        frame = int(present[0])
        truth = labels[frame] == oid
        if mask:
            prompts.append(Prompt(frame=frame, object_id=oid, mask=truth))
            continue
        kwargs: dict[str, Any] = {"points": [interior_points(truth)[0]], "labels": [1]}
        if box:
            ys, xs = np.nonzero(truth)
            kwargs["box"] = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        prompts.append(Prompt(frame=frame, object_id=oid, **kwargs))
    return prompts


@dataclass
class ObjectScores:
    """Scores of one object over the evaluated frames."""

    object_id: int
    frames: list[int] = field(default_factory=list)
    iou: list[float] = field(default_factory=list)
    f: list[float] = field(default_factory=list)
    id_switches: int = 0

    @property
    def j_mean(self) -> float:
        """Mean region similarity J."""
        return float(np.mean(self.iou)) if self.iou else float("nan")

    @property
    def f_mean(self) -> float:
        """Mean boundary F-measure."""
        return float(np.mean(self.f)) if self.f else float("nan")


@dataclass
class Report:
    """Scores of one engine run on one sequence."""

    name: str
    engine: str
    shape: list[int]
    tolerance: int
    seconds: float
    objects: list[ObjectScores]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def j_mean(self) -> float:
        """Mean J over objects."""
        return float(np.mean([o.j_mean for o in self.objects]))

    @property
    def f_mean(self) -> float:
        """Mean F over objects."""
        return float(np.mean([o.f_mean for o in self.objects]))

    @property
    def id_switches(self) -> int:
        """Total identity switches."""
        return int(sum(o.id_switches for o in self.objects))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary plus per-object, per-frame scores."""
        return {
            "name": self.name,
            "engine": self.engine,
            "shape": self.shape,
            "boundary_tolerance_px": self.tolerance,
            "seconds": round(self.seconds, 3),
            "frames_per_second": round(self.shape[0] / self.seconds, 2) if self.seconds else None,
            "J_mean": round(self.j_mean, 4),
            "F_mean": round(self.f_mean, 4),
            "JF_mean": round((self.j_mean + self.f_mean) / 2, 4),
            "id_switches": self.id_switches,
            "settings": self.settings,
            "objects": [
                {
                    "object_id": o.object_id,
                    "J_mean": round(o.j_mean, 4),
                    "F_mean": round(o.f_mean, 4),
                    "id_switches": o.id_switches,
                    "frames": o.frames,
                    "iou": [round(v, 4) for v in o.iou],
                    "f": [round(v, 4) for v in o.f],
                }
                for o in self.objects
            ],
        }

    def table(self) -> str:
        """A short plain-text table."""
        lines = [f"{self.name} ({self.engine}, {self.shape[0]} frames, {self.seconds:.1f} s)"]
        lines.append(f"{'object':>8} {'J':>6} {'F':>6} {'switches':>9}")
        for o in self.objects:
            lines.append(f"{o.object_id:>8} {o.j_mean:6.3f} {o.f_mean:6.3f} {o.id_switches:>9}")
        lines.append(f"{'mean':>8} {self.j_mean:6.3f} {self.f_mean:6.3f} {self.id_switches:>9}")
        return "\n".join(lines)


def overlap_following(labels: np.ndarray, prompts: Sequence[Prompt]) -> dict[int, float]:
    """Mean J of a perfect segmentation linked from frame to frame by overlap alone.

    Each object starts from its true mask on its prompt frame. On every later frame it
    becomes the true segment that covers most of its last seen mask, whatever that
    segment's id, and is reported absent while no segment covers it. It is scored
    against its own id as in :func:`evaluate`. The segmentation is perfect, so what
    this tracker loses comes from linking by overlap alone: where the truth changes
    ids (an id that vanishes while the object is still there, divisions, merges), and
    where objects cross or re-enter elsewhere. For data whose reference is a
    pipeline's output it shows how much of a score the reference's own id changes
    cost; an engine with an appearance model can beat it where objects cross.

    Parameters
    ----------
    labels : ndarray
        ``(t, y, x)`` ground-truth ids.
    prompts : sequence of Prompt
        Give each object's id and first frame (their points, box or mask are not used).

    Returns
    -------
    dict
        Mean J per object id, over the frames :func:`evaluate` scores.
    """
    labels = np.asarray(labels)
    scores: dict[int, float] = {}
    for prompt in prompts:
        oid, start = prompt.object_id, prompt.frame
        last_seen = labels[start] == oid
        ious = [1.0]
        for t in range(start + 1, labels.shape[0]):
            best = _matched_id(last_seen, labels[t])
            current = labels[t] == best if best else np.zeros_like(last_seen)
            if best:
                last_seen = current
            ious.append(jaccard(current, labels[t] == oid))
        scores[oid] = float(np.mean(ious))
    return scores


def per_frame_agreement(
    engine: Engine, frames: Any, labels: np.ndarray, ids: Sequence[int]
) -> dict[int, float]:
    """Mean J of the engine's click segmentation on every frame, with perfect linking.

    On each frame, every listed object present in the truth gets a fresh click at its
    deepest point (all of them together, as in :func:`first_frame_prompts`), and the
    engine's masks for that frame alone are scored; nothing is propagated. As in
    :func:`evaluate`, an object is scored from its first frame in the truth on; on a
    frame where it is absent it is not prompted and scores 1. This is what the engine's
    segmentation would score if a user clicked every object on every frame: a
    ceiling for tracking from one click, set by the segmentation method alone.

    Parameters
    ----------
    engine : Engine
        The engine; it is reset on every frame.
    frames : array-like
        ``(t, y, x[, c])`` video.
    labels : ndarray
        ``(t, y, x)`` ground truth.
    ids : sequence of int
        Objects to score.

    Returns
    -------
    dict
        Mean J per object id.

    Raises
    ------
    ValueError
        If an id does not occur in the truth.
    """
    labels = np.asarray(labels)
    present_on = {int(oid): (labels == oid).any(axis=(1, 2)) for oid in ids}
    missing = [oid for oid, on in present_on.items() if not on.any()]
    if missing:
        raise ValueError(f"objects {missing} do not occur in the ground truth")
    first = {oid: int(np.argmax(on)) for oid, on in present_on.items()}
    ious: dict[int, list[float]] = {oid: [] for oid in present_on}
    engine.set_video(frames)
    for t in range(labels.shape[0]):
        engine.reset()
        truths = {oid: labels[t] == oid for oid in ious if t >= first[oid]}
        prompts = [
            Prompt(frame=t, object_id=oid, points=[interior_points(truth)[0]], labels=[1])
            for oid, truth in truths.items()
            if present_on[oid][t]
        ]
        masks = engine.add_prompts(prompts)[t].masks if prompts else {}
        for oid, truth in truths.items():
            ious[oid].append(jaccard(masks.get(oid, np.zeros_like(truth)), truth))
    return {oid: float(np.mean(v)) for oid, v in ious.items()}


def _matched_id(pred: np.ndarray, truth_frame: np.ndarray) -> int:
    if not pred.any():
        return 0
    hits = truth_frame[pred]
    hits = hits[hits != 0]
    if hits.size == 0:
        return 0
    values, counts = np.unique(hits, return_counts=True)
    return int(values[np.argmax(counts)])


def evaluate(
    engine: Engine | str,
    frames: Any,
    labels: np.ndarray,
    prompts: Sequence[Prompt],
    *,
    name: str = "sequence",
) -> Report:
    """Run ``engine`` forward from the prompts and score every object on every frame.

    Parameters
    ----------
    engine : Engine or str
        An engine, or a name for :func:`napari_sam2v.engines.create_engine`.
    frames : array-like
        ``(t, y, x[, c])`` video.
    labels : ndarray
        ``(t, y, x)`` ground truth whose ids match the prompts' object ids.
    prompts : sequence of Prompt
        Usually from :func:`first_frame_prompts`.
    name : str, optional
        Name of the sequence in the report.

    Returns
    -------
    Report
    """
    labels = np.asarray(labels)
    eng = create_engine(engine) if isinstance(engine, str) else engine
    tolerance = boundary_tolerance(labels.shape[1:])
    first_frame = {p.object_id: p.frame for p in prompts}
    scores = {oid: ObjectScores(oid) for oid in sorted(first_frame)}
    last_match: dict[int, int] = {}
    t0 = time.perf_counter()
    eng.set_video(frames)
    eng.add_prompts(prompts)
    for result in eng.propagate(direction="forward"):
        truth_frame = labels[result.frame]
        for oid, obj in scores.items():
            if result.frame < first_frame[oid]:
                continue
            pred = result.masks.get(oid, np.zeros(truth_frame.shape, bool))
            truth = truth_frame == oid
            obj.frames.append(result.frame)
            obj.iou.append(jaccard(pred, truth))
            obj.f.append(boundary_f_measure(pred, truth, tolerance=tolerance))
            match = _matched_id(pred, truth_frame)
            if match and oid in last_match and match != last_match[oid]:
                obj.id_switches += 1
            if match:
                last_match[oid] = match
    seconds = time.perf_counter() - t0
    info = eng.info
    if isinstance(engine, str):
        eng.close()
    return Report(
        name=name,
        engine=info.engine + (f" ({info.model})" if info.model else ""),
        shape=list(labels.shape),
        tolerance=tolerance,
        seconds=seconds,
        objects=list(scores.values()),
        settings=dict(info.settings),
    )


def _parse_option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"--option must look like KEY=VALUE (got {text!r})")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _add_scores(payload: dict[str, Any], name: str, scores: dict[int, float]) -> None:
    """Store per-object mean J as ``{name}_J`` and their mean as ``{name}_J_mean``."""
    payload[f"{name}_J_mean"] = round(float(np.mean(list(scores.values()))), 4)
    payload[f"{name}_J"] = {str(k): round(v, 4) for k, v in scores.items()}


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.accuracy", description=__doc__)
    parser.add_argument("--sample", choices=("reef", "t98g", "both"), default="both")
    parser.add_argument("--engine", choices=("classic", "sam2"), default="classic")
    parser.add_argument("--model", default=None, help="SAM 2 model name (engine sam2)")
    parser.add_argument("--crop", default=None, help="spatial crop y0:y1,x0:x1")
    parser.add_argument("--frames", type=int, default=None, help="use the first N frames")
    parser.add_argument("--max-objects", type=int, default=None, help="prompt the first N ids")
    prompt_kind = parser.add_mutually_exclusive_group()
    prompt_kind.add_argument("--box", action="store_true", help="also give each object's box")
    prompt_kind.add_argument(
        "--mask",
        action="store_true",
        help="prompt with each object's true first-frame mask (oracle seed) instead of a click",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="engine option (repeatable), e.g. --option feature=texture",
    )
    parser.add_argument(
        "--per-frame",
        action="store_true",
        help="also click every object on every frame and score that segmentation alone",
    )
    parser.add_argument("--data", type=Path, default=T98G_DIR, help="T98G data folder")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for the JSON")
    args = parser.parse_args(argv)
    options: dict[str, Any] = dict(_parse_option(text) for text in args.option)
    if args.engine == "sam2" and args.model:
        options["model"] = args.model
    samples = ("reef", "t98g") if args.sample == "both" else (args.sample,)
    args.out.mkdir(parents=True, exist_ok=True)
    for sample in samples:
        if sample == "t98g":
            frames, labels = load_t98g(args.data, n_frames=args.frames, crop=args.crop)
        else:
            frames, labels = load_reef_truth(args.frames, args.crop)
        prompts = first_frame_prompts(
            labels, max_objects=args.max_objects, box=args.box, mask=args.mask
        )
        engine = create_engine(args.engine, **options)
        try:
            report = evaluate(engine, frames, labels, prompts, name=sample)
            payload = report.to_dict()
            if args.per_frame:
                ids = [p.object_id for p in prompts]
                _add_scores(
                    payload, "per_frame_click", per_frame_agreement(engine, frames, labels, ids)
                )
        finally:
            engine.close()
        kind = "mask" if args.mask else "box+points" if args.box else "points"
        payload["prompts"] = {"kind": kind, "count": len(prompts)}
        _add_scores(payload, "overlap_following", overlap_following(labels, prompts))
        payload["crop"] = args.crop
        payload["max_objects"] = args.max_objects
        payload["engine_options"] = options
        path = args.out / f"accuracy_{sample}_{args.engine}.json"
        path.write_text(json.dumps(payload, indent=1))
        print(report.table())
        print(
            "perfect segmentation linked by overlap alone: "
            f"mean J {payload['overlap_following_J_mean']:.3f}"
        )
        if args.per_frame:
            print(
                "a click on every object on every frame, no tracking: "
                f"mean J {payload['per_frame_click_J_mean']:.3f}"
            )
        print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
