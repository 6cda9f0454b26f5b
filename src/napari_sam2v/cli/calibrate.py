"""``napari-sam2v calibrate``: show or correct the calibration result stores record."""

from __future__ import annotations

import argparse
from typing import Any

from napari_sam2v.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_calibration_options,
    add_command,
    calibration_options,
    note_default_time_unit,
    print_error,
)
from napari_sam2v.errors import Sam2vError
from napari_sam2v.types import CalibrationKeywords, any_given

__all__ = ["register", "run"]

_EXAMPLES = """\
  napari-sam2v calibrate cells.zarr                                   # show it
  napari-sam2v calibrate cells.zarr --pixel-size 0.65 --unit um
  napari-sam2v calibrate cells.zarr --frame-interval 10 --time-unit min
  napari-sam2v calibrate results/*.zarr --pixel-size 2.5 --unit mm    # one camera, many runs
"""


def register(commands: Any) -> None:
    """Add the ``calibrate`` command to the sub-command parsers."""
    parser = add_command(
        commands,
        "calibrate",
        help="show or correct the calibration of result stores",
        description=(
            "Without options, print the calibration each result store records and the "
            "ones it replaced. With options, lay them over it and rewrite the store's "
            "provenance and OME-Zarr scales, so that napari, Fiji, 'measure' and "
            "'export' use the new pixel size and frame interval without tracking again. "
            "The labels are not touched. A store that cannot be changed (locked, "
            "unreadable) is reported and the others still are; exit status 1 then."
        ),
        examples=_EXAMPLES,
    )
    parser.add_argument(
        "results", nargs="+", metavar="R.zarr", help="result stores written by 'track'"
    )
    add_calibration_options(parser, default="the store's, unchanged")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``napari-sam2v calibrate``."""
    given = calibration_options(args)
    change = any_given(given)
    failed = 0
    for path in args.results:
        try:
            print(_change(path, given, args) if change else _show(path))
        except Sam2vError as exc:
            if len(args.results) == 1:
                raise
            print_error(str(exc))
            failed += 1
    if failed:
        print_error(f"{failed} of {len(args.results)} stores failed")
        return EXIT_FAILED
    return EXIT_OK


def _show(path: str) -> str:
    """The store's calibration, then the ones it replaced, oldest first."""
    from napari_sam2v.store import open_result
    from napari_sam2v.store.calibrate import HISTORY_KEY
    from napari_sam2v.types import Calibration

    result = open_result(path)
    lines = [f"{path}: {result.calibration.describe()}"]
    for entry in result.metadata.get(HISTORY_KEY) or []:
        old = Calibration.from_dict(entry.get("calibration") or {})
        lines.append(f"  replaced {entry.get('replaced', '?')}: {old.describe()}")
    return "\n".join(lines)


def _change(path: str, given: CalibrationKeywords, args: argparse.Namespace) -> str:
    """Lay ``given`` over the store's calibration and record the result."""
    from napari_sam2v.store import ResultStore

    with ResultStore.open(path) as store:
        note_default_time_unit(args, store.calibration, where=path)
        new = store.calibration.overridden(**given)
        old = store.set_calibration(new)
    return f"{path}: {new.describe()} (was: {old.describe()})"
