"""``napari-sam2v measure``: per-frame, per-track and MSD tables from a result store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from napari_sam2v.cli.common import (
    EXIT_OK,
    add_calibration_options,
    add_command,
    calibration_options,
    format_table,
    note_default_time_unit,
)

__all__ = ["register", "run", "summary_rows"]

FORMATS = ("csv", "parquet", "xlsx")

_EXAMPLES = """\
  napari-sam2v measure reef.zarr --out reef_tables/
  napari-sam2v measure reef.zarr --out reef_tables/ --pixel-size 0.5 --unit mm \\
      --frame-interval 0.04 --format xlsx --plots
  napari-sam2v measure cells.zarr --out cells_tables/ --format parquet
"""


def register(commands: Any) -> None:
    """Add the ``measure`` command to the sub-command parsers."""
    parser = add_command(
        commands,
        "measure",
        help="measure areas and trajectories of a result store",
        description=(
            "Compute per-frame (area, centroid, shape), per-track (path length, speeds, "
            "growth) and MSD tables from a result store, in physical units when a "
            "calibration is known (from the store, or given here), and write them with a "
            "JSON sidecar of units."
        ),
        examples=_EXAMPLES,
    )
    parser.add_argument("result", metavar="R.zarr", help="result store written by 'track'")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the tables")
    add_calibration_options(parser, default="from the store's metadata")
    parser.add_argument("--format", choices=FORMATS, default="csv", help="table format")
    parser.add_argument(
        "--plots",
        action="store_true",
        help="also write the area, trajectory, speed and MSD plots (PNG and SVG)",
    )
    parser.set_defaults(run=run)


def _mean(frame: Any, column: str) -> float | None:
    if frame is None or column not in getattr(frame, "columns", ()):
        return None
    values = frame[column].dropna()
    return float(values.mean()) if len(values) else None


def summary_rows(measurements: Any) -> dict[str, str]:
    """Headline numbers of a measurement, formatted with their units.

    Parameters
    ----------
    measurements : Measurements
        Output of :func:`napari_sam2v.analysis.measure`.

    Returns
    -------
    dict of str to str
        ``objects``, ``mean area`` and ``mean speed``.
    """
    calibration = measurements.calibration
    unit, time_unit = calibration.unit, calibration.time_unit
    area = _mean(measurements.frames, "area")
    speed = _mean(measurements.tracks, "mean_speed")
    return {
        "objects": str(len(measurements.tracks)),
        "mean area": "n/a" if area is None else f"{area:.4g} {unit}^2",
        "mean speed": "n/a" if speed is None else f"{speed:.4g} {unit}/{time_unit}",
    }


def run(args: argparse.Namespace) -> int:
    """Run ``napari-sam2v measure``."""
    from napari_sam2v.analysis import measure
    from napari_sam2v.store import open_result

    result = open_result(args.result)
    note_default_time_unit(args, result.calibration, where=args.result)
    measurements = measure(result, **calibration_options(args))
    if measurements.untracked_frames:
        spans = ", ".join(
            f"{a}-{b}" if a != b else str(a) for a, b in measurements.untracked_frames
        )
        print(
            f"note: {args.result} is not complete ({result.status}): frames {spans} were "
            "never tracked; the presence table marks them tracked=False, which is not the "
            "objects being absent. Run the same track command with --resume to finish it",
            file=sys.stderr,
        )
    out = Path(args.out)
    written = list(measurements.save(out, format=args.format) or [])
    if args.plots:
        written += list(measurements.save_plots(out) or [])
    summary = summary_rows(measurements)
    print(format_table(list(summary), [list(summary.values())]))
    for path in written:
        print(f"wrote {path}")
    return EXIT_OK
