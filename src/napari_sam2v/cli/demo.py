"""``napari-sam2v demo``: the whole pipeline on the bundled samples, offline.

For each sample (the synthetic ``reef`` clip with exact ground truth and the
real ``cells`` T98G time-lapse with reference masks): load its prompt file,
track into a result store, measure in physical units, save tables and plots,
and compare the labels with the sample's reference masks. With ``--engine auto``
the demo uses SAM 2.1-tiny when its weights are cached (or the hub answers
quickly) and the weights-free classic engine otherwise, saying so in one line.
Models with random weights are refused: their output is not a result.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from napari_sam2v.cli.common import EXIT_OK, add_command, format_table, non_negative_int
from napari_sam2v.cli.interrupt import EXIT_INTERRUPTED, CancelOnInterrupt
from napari_sam2v.cli.measure import summary_rows
from napari_sam2v.cli.progress import ProgressPrinter
from napari_sam2v.engines.sam2.registry import DEVICES
from napari_sam2v.errors import ModelError, Sam2vError, StoreError

__all__ = [
    "CPU_SAM2_FRAMES",
    "SAMPLES",
    "SampleSummary",
    "choose_engine",
    "frame_limit",
    "mean_iou",
    "register",
    "run",
]

SAMPLES = ("reef", "cells")
#: The SAM 2 model the demo uses when its weights are available.
DEMO_MODEL = "sam2.1-tiny"
#: Frames per sample that SAM 2 tracks on a CPU by default: it encodes every frame at
#: 1024x1024, seconds per frame on a laptop CPU, and the demo must finish in minutes.
CPU_SAM2_FRAMES = 12
_MARKER = "demo_summary.json"
_HUB_TIMEOUT_S = 3.0

_EXAMPLES = """\
  napari-sam2v demo                          # ./demo_output, SAM 2.1-tiny if cached else classic
  napari-sam2v demo --out /tmp/demo --engine classic
  napari-sam2v demo --engine sam2            # needs the sam2.1-tiny weights (models download)
  napari-sam2v demo --sample reef
"""


@dataclass
class SampleSummary:
    """Headline results of the demo on one sample."""

    sample: str
    engine: str
    frames: str
    objects: int
    mean_area: str
    mean_speed: str
    iou: float | None
    seconds: float
    store: str
    tables: str
    plots: str


def register(commands: Any) -> None:
    """Add the ``demo`` command to the sub-command parsers."""
    parser = add_command(
        commands,
        "demo",
        help="run the whole pipeline on the bundled samples (no network needed)",
        description=(
            "Track, store, measure and plot the bundled 'reef' and 'cells' samples from "
            "their prompt files, then print a summary (engine, frames, objects, mean area "
            "and speed in physical units, IoU against the samples' reference masks) and "
            "the paths written. Runs offline in well under 3 minutes on 2 CPU cores."
        ),
        examples=_EXAMPLES,
    )
    parser.add_argument(
        "--out", default="demo_output", metavar="DIR", help="output folder (created)"
    )
    parser.add_argument(
        "--engine",
        choices=("auto", "sam2", "classic"),
        default="auto",
        help="auto: SAM 2.1-tiny when its weights are available, else classic",
    )
    parser.add_argument(
        "--model",
        default=DEMO_MODEL,
        metavar="NAME|PATH",
        help="SAM 2 model for --engine sam2/auto (models with random weights are refused)",
    )
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument(
        "--sample", choices=(*SAMPLES, "all"), default="all", help="which sample(s) to run"
    )
    parser.add_argument(
        "--max-frames",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="track only the first N frames of each sample; 0 means all (default: all, "
        f"except SAM 2 on a CPU: {CPU_SAM2_FRAMES}, so the demo stays under 3 minutes)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    parser.set_defaults(run=run)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _hub_reachable(timeout: float = _HUB_TIMEOUT_S) -> bool:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (80 if parsed.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _is_random(registry: Any, model: str) -> bool:
    spec = None
    try:
        spec = registry.get_model(model)
    except (ModelError, KeyError):
        return False
    return bool(getattr(spec, "random_weights", False))


def choose_engine(requested: str, model: str) -> tuple[str, str | None, str]:
    """Pick the demo's engine.

    Parameters
    ----------
    requested : {"auto", "sam2", "classic"}
        The ``--engine`` option.
    model : str
        The SAM 2 model to use when SAM 2 is chosen.

    Returns
    -------
    (engine, model, note)
        ``note`` is one line explaining a fallback to the classic engine (empty
        when there is nothing to say).

    Raises
    ------
    ModelError
        If ``model`` has random weights (their output is not a result).
    """
    if requested == "classic":
        return "classic", None, ""
    from napari_sam2v.engines.sam2 import registry

    if _is_random(registry, model):
        raise ModelError(
            f"the demo shows real results, but {model!r} has random weights; use a trained "
            "model (e.g. sam2.1-tiny) or --engine classic ('track' accepts test models)"
        )
    if requested == "sam2" or Path(model).exists() or registry.is_cached(model):
        return "sam2", model, ""
    fallback = f"{model} weights are not cached and"
    if _offline():
        reason = f"{fallback} HF_HUB_OFFLINE is set"
    elif not _hub_reachable():
        reason = f"{fallback} the Hugging Face hub is unreachable"
    else:
        try:
            registry.download_model(model)
            return "sam2", model, ""
        except ModelError as exc:
            reason = f"{fallback} could not be downloaded ({exc})"
    note = (
        f"{reason}: using the weights-free classic engine "
        f"(for SAM 2 run 'napari-sam2v models download {model}')"
    )
    return "classic", None, note


def _has_accelerator() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(torch.cuda.is_available() or (mps is not None and mps.is_available()))


def frame_limit(engine: str, device: str, requested: int | None) -> int | None:
    """Frames per sample the demo tracks.

    Parameters
    ----------
    engine : str
        Engine chosen by :func:`choose_engine`.
    device : str
        ``--device``.
    requested : int or None
        ``--max-frames`` (0 means all frames).

    Returns
    -------
    int or None
        ``None`` for every frame; otherwise the number of leading frames. SAM 2
        on a CPU defaults to :data:`CPU_SAM2_FRAMES`.
    """
    if requested is not None:
        return requested or None
    if engine != "sam2" or device in ("cuda", "mps"):
        return None
    if device == "auto" and _has_accelerator():
        return None
    return CPU_SAM2_FRAMES


def mean_iou(
    labels: Any,
    reference: Any,
    object_ids: Iterable[int] | None = None,
    *,
    frames: Iterable[int] | None = None,
) -> float | None:
    """Mean intersection over union per (object, frame), against reference labels.

    Parameters
    ----------
    labels, reference : array-like
        ``(t, y, x)`` label videos whose object ids correspond; read one frame at a
        time.
    object_ids : iterable of int, optional
        Objects to score (default: every id of the reference). Pass the prompted
        objects when the reference labels more objects than were tracked.
    frames : iterable of int, optional
        Frames to score (default: all); pass the tracked frames of a partial run.

    Returns
    -------
    float or None
        Mean IoU over the (object, frame) pairs where the object is in either
        video (an object missed on a frame scores 0 there); ``None`` when the
        shapes differ or nothing is to be scored.
    """
    if reference is None or tuple(labels.shape) != tuple(reference.shape):
        return None
    wanted = None if object_ids is None else np.asarray(sorted(set(object_ids)))
    scores: list[float] = []
    indices = range(int(reference.shape[0])) if frames is None else sorted(set(frames))
    for t in indices:
        ref = np.asarray(reference[int(t)])
        got = np.asarray(labels[int(t)])
        ids = np.union1d(np.unique(ref[ref > 0]), np.unique(got[got > 0]))
        if wanted is not None:
            ids = np.intersect1d(ids, wanted)
        for oid in ids:
            a, b = got == oid, ref == oid
            scores.append(np.count_nonzero(a & b) / np.count_nonzero(a | b))
    return float(np.mean(scores)) if scores else None


def _load_sample(name: str) -> Any:
    from napari_sam2v import samples

    return samples.load_reef() if name == "reef" else samples.load_cells()


def _prepare(out: Path, names: list[str]) -> None:
    """Create ``out``; replace earlier demo stores there, but never foreign data."""
    out.mkdir(parents=True, exist_ok=True)
    ours = (out / _MARKER).is_file()
    for name in names:
        folder = out / name
        if not folder.exists():
            continue
        if not ours:
            raise StoreError(
                f"{folder} exists and was not written by the demo; choose another --out"
            )
        shutil.rmtree(folder)
    (out / _MARKER).write_text(json.dumps({"status": "running", "samples": names}), "utf-8")


@dataclass(frozen=True)
class _Plan:
    engine: str
    model: str | None
    device: str
    limit: int | None
    quiet: bool


def _run_sample(name: str, out: Path, plan: _Plan, stop: CancelOnInterrupt) -> SampleSummary | None:
    from napari_sam2v.analysis import measure
    from napari_sam2v.io.prompt_files import Prompts
    from napari_sam2v.store.pipeline import track

    begin = time.perf_counter()
    sample = _load_sample(name)
    n_frames = int(sample.frames.shape[0])
    end = None if plan.limit is None or plan.limit >= n_frames else plan.limit - 1
    folder = out / name
    progress = ProgressPrinter(f"{name}", enabled=not plan.quiet)
    with progress:
        result = track(
            sample.video_path,
            Prompts.load(sample.prompts_path),
            folder / "result.zarr",
            engine=plan.engine,
            model=plan.model,
            device=plan.device,
            end=end,
            progress=progress,
            cancel=stop.event,
        )
    if stop.requested:
        return None
    measurements = measure(result, **sample.calibration.overrides())
    measurements.save(folder / "tables", format="csv")
    measurements.save_plots(folder / "plots")
    headline = summary_rows(measurements)
    label = plan.engine if plan.model is None else f"{plan.engine} ({plan.model})"
    done = np.flatnonzero(result.frames_done)
    return SampleSummary(
        sample=name,
        engine=label,
        frames=f"{done.size}" if done.size == n_frames else f"{done.size}/{n_frames}",
        objects=len(result.objects),
        mean_area=headline["mean area"],
        mean_speed=headline["mean speed"],
        iou=mean_iou(result.labels, sample.labels, [obj.id for obj in result.objects], frames=done),
        seconds=round(time.perf_counter() - begin, 1),
        store=str(result.path),
        tables=str(folder / "tables"),
        plots=str(folder / "plots"),
    )


def run(args: argparse.Namespace) -> int:
    """Run ``napari-sam2v demo``."""
    names = list(SAMPLES) if args.sample == "all" else [args.sample]
    out = Path(args.out).expanduser().resolve()
    engine, model, note = choose_engine(args.engine, args.model)
    if note:
        print(note, file=sys.stderr, flush=True)
    plan = _Plan(
        engine, model, args.device, frame_limit(engine, args.device, args.max_frames), args.quiet
    )
    if plan.limit is not None and args.max_frames is None:
        print(
            f"SAM 2 on a CPU: tracking the first {plan.limit} frames of each sample to stay "
            "under 3 minutes (--max-frames 0 tracks all)",
            file=sys.stderr,
            flush=True,
        )
    try:
        _prepare(out, names)
    except OSError as exc:
        if isinstance(exc, Sam2vError):
            raise
        raise StoreError(f"cannot prepare the demo folder {out}: {exc}") from None
    summaries: list[SampleSummary] = []
    with CancelOnInterrupt() as stop:
        for name in names:
            summary = _run_sample(name, out, plan, stop)
            if summary is None:
                print(
                    f"interrupted: the demo stopped during {name!r}; run it again to restart",
                    file=sys.stderr,
                )
                return EXIT_INTERRUPTED
            summaries.append(summary)
    marker = out / _MARKER
    marker.write_text(
        json.dumps({"status": "done", "summaries": [asdict(s) for s in summaries]}, indent=2),
        encoding="utf-8",
    )
    rows = [
        [
            s.sample,
            s.engine,
            s.frames,
            s.objects,
            s.mean_area,
            s.mean_speed,
            "n/a" if s.iou is None else f"{s.iou:.3f}",
            f"{s.seconds:.1f}",
        ]
        for s in summaries
    ]
    headers = [
        "sample",
        "engine",
        "frames",
        "objects",
        "mean area",
        "mean speed",
        "IoU vs reference",
        "seconds",
    ]
    print(format_table(headers, rows))
    print()
    for s in summaries:
        print(f"{s.sample}: store {s.store}")
        print(f"{s.sample}: tables {s.tables}")
        print(f"{s.sample}: plots {s.plots}")
    print(f"summary: {marker}")
    return EXIT_OK
