"""``napari-sam2v batch``: a manifest of videos on dask.distributed."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from napari_sam2v.cli.common import EXIT_FAILED, EXIT_OK, add_command, positive_int
from napari_sam2v.cli.interrupt import EXIT_INTERRUPTED, CancelOnInterrupt
from napari_sam2v.cli.track import (
    DIRECTIONS,
    add_engine_options,
    engine_choice,
    engine_options,
)

if TYPE_CHECKING:
    from napari_sam2v.batch.tasks import VideoOutcome

__all__ = ["register", "run"]

_EXAMPLES = """\
  napari-sam2v batch manifest.csv --out results/                 # LocalCluster on this machine
  napari-sam2v batch manifest.csv --out results/ --workers 4 --engine classic
  napari-sam2v batch manifest.csv --out results/ --scheduler tcp://10.0.0.5:8786
  napari-sam2v batch manifest.csv --out results/                 # again: skips finished videos
  napari-sam2v batch manifest.csv --out results/ --remeasure    # new calibration: tables again

manifest.csv (paths relative to the manifest's folder):
  video,prompts,channel,pixel_size,unit,frame_interval,model
  transect_01.mp4,transect_01.json,,0.5,mm,0.04,
  cells_A1.tif,cells_A1.csv,1,0.65,um,300,sam2.1-small
"""


def register(commands: Any) -> None:
    """Add the ``batch`` command to the sub-command parsers."""
    parser = add_command(
        commands,
        "batch",
        help="track and measure a manifest of videos on dask.distributed",
        description=(
            "Run track + measure for every row of a CSV manifest (columns video, prompts "
            "and optionally channel, axes, pixel_size, unit, frame_interval, time_unit, model, "
            "name), one dask.distributed task per video: on a LocalCluster bound to "
            "127.0.0.1 by default, or on a running scheduler. Each video gets its own "
            "folder under --out; combined tables batch_tracks/batch_frames (Parquet and "
            "CSV, with a 'video' column) and batch_report.json are written at the end. "
            "Failed videos do not stop the batch; re-running skips finished videos and "
            "resumes partial ones (--remeasure measures finished ones again, without "
            "tracking). Exit status 1 when any video failed."
        ),
        examples=_EXAMPLES,
    )
    parser.add_argument("manifest", metavar="MANIFEST.csv", help="CSV manifest, one row per video")
    parser.add_argument("--out", required=True, metavar="DIR", help="batch output folder")
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="address of a running dask scheduler, e.g. tcp://host:8786 (default: start a "
        "LocalCluster on 127.0.0.1)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="LocalCluster worker processes (default: one per 4 CPU cores, at least 1)",
    )
    add_engine_options(parser)
    parser.add_argument(
        "--direction",
        choices=DIRECTIONS,
        default="forward",
        help="propagate forward, backward or both ways from the start frame",
    )
    parser.add_argument(
        "--format",
        choices=("csv", "parquet", "xlsx"),
        default="csv",
        help="format of each video's tables",
    )
    parser.add_argument("--plots", action="store_true", help="also write each video's plots")
    parser.add_argument(
        "--remeasure",
        action="store_true",
        help="measure videos finished by an earlier run again from their stores, without "
        "tracking (after fixing the manifest's calibration columns or running "
        "'napari-sam2v calibrate'); a row's calibration is recorded in its store first",
    )
    parser.set_defaults(run=run)


def _print_outcome(outcome: VideoOutcome, finished: int, total: int) -> None:
    if outcome.status == "failed":
        detail = f"FAILED: {outcome.error}"
    elif outcome.status == "skipped":
        detail = "skipped (finished by an earlier run)"
    else:
        seconds = outcome.seconds.get("total", 0.0)
        detail = f"done in {seconds:.1f} s"
        if outcome.measured_only:
            detail += " (measured from its finished store, not tracked)"
        elif outcome.resumed:
            detail += " (resumed a partial store)"
    try:
        print(f"[{finished}/{total}] {outcome.name}: {detail}", flush=True)
    except BrokenPipeError:
        # The reader of our output went away (`| head`): the batch goes on, quietly;
        # batch_report.json and the exit status still say how it went.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def run(args: argparse.Namespace) -> int:
    """Run ``napari-sam2v batch``."""
    from napari_sam2v.batch import read_manifest, run_batch

    manifest = read_manifest(args.manifest, check_files=not args.remeasure)
    options = engine_options(args)
    if args.scheduler and args.workers is not None:
        print(
            "note: --workers is ignored with --scheduler (the cluster brings its own workers)",
            file=sys.stderr,
        )
    where = args.scheduler or "a LocalCluster on 127.0.0.1"
    print(f"batch: {len(manifest)} videos from {manifest.path} on {where}", flush=True)
    with CancelOnInterrupt(
        "stopping the batch: running videos stop after their current frame, the others "
        "do not start (press Ctrl-C again to abort)"
    ) as stop:
        report = run_batch(
            manifest,
            args.out,
            scheduler=args.scheduler,
            workers=args.workers,
            **engine_choice(args),
            table_format=args.format,
            plots=args.plots,
            engine_options=options,
            remeasure=args.remeasure,
            on_outcome=_print_outcome,
            cancel=stop.event,
        )
    print(report.format())
    print(f"report: {report.out / 'batch_report.json'}")
    if stop.requested:
        print(
            "interrupted: re-run the same command to finish the batch (finished videos "
            "are skipped, stopped ones resume)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if not report.ok:
        print(
            f"error: {len(report.failed)} of {len(report.outcomes)} videos failed "
            "(see above); fix them and re-run the same command to finish the batch",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK
