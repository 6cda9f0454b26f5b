"""``napari-sam2v calibrate``: show or correct the calibration a result store records."""

from __future__ import annotations

import argparse
from typing import Any

from napari_sam2v.cli.common import (
    EXIT_OK,
    add_calibration_options,
    add_command,
    calibration_options,
)

__all__ = ["register", "run"]

_EXAMPLES = """\
  napari-sam2v calibrate cells.zarr                                   # show it
  napari-sam2v calibrate cells.zarr --pixel-size 0.65 --unit um
  napari-sam2v calibrate cells.zarr --frame-interval 10 --time-unit min
"""


def register(commands: Any) -> None:
    """Add the ``calibrate`` command to the sub-command parsers."""
    parser = add_command(
        commands,
        "calibrate",
        help="show or correct the calibration of a result store",
        description=(
            "Without options, print the calibration a result store records and the ones "
            "it replaced. With options, lay them over it and rewrite the store's "
            "provenance and OME-Zarr scales, so that napari, Fiji, 'measure' and "
            "'export' use the new pixel size and frame interval without tracking again. "
            "The labels are not touched."
        ),
        examples=_EXAMPLES,
    )
    parser.add_argument("result", metavar="R.zarr", help="result store written by 'track'")
    add_calibration_options(parser, default="the store's, unchanged")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``napari-sam2v calibrate``."""
    from napari_sam2v.store import ResultStore, open_result
    from napari_sam2v.store.calibrate import HISTORY_KEY
    from napari_sam2v.types import Calibration

    given = calibration_options(args)
    if not any(value is not None for value in given.values()):
        result = open_result(args.result)
        print(f"{args.result}: {result.calibration.describe()}")
        for entry in result.metadata.get(HISTORY_KEY) or []:
            old = Calibration.from_dict(entry.get("calibration") or {})
            print(f"  replaced {entry.get('replaced', '?')}: {old.describe()}")
        return EXIT_OK
    with ResultStore.open(args.result) as store:
        new = store.calibration.overridden(**given)
        old = store.set_calibration(new)
    print(f"{args.result}: {new.describe()} (was: {old.describe()})")
    return EXIT_OK
