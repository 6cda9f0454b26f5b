"""``napari-sam2v export``: label TIFF stack, PNG mask sequence or COCO JSON."""

from __future__ import annotations

import argparse
from typing import Any

from napari_sam2v.cli.common import (
    EXIT_OK,
    add_calibration_options,
    add_command,
    calibration_options,
)
from napari_sam2v.errors import InputError
from napari_sam2v.types import any_given

__all__ = ["register", "run"]

TARGETS = ("tiff", "png", "coco")

_EXAMPLES = """\
  napari-sam2v export reef.zarr --to tiff --out reef_labels.tif     # ImageJ/Fiji label stack
  napari-sam2v export reef.zarr --to png --out reef_masks/          # one PNG per frame
  napari-sam2v export reef.zarr --to png --out reef_masks/ --per-object
  napari-sam2v export reef.zarr --to coco --out reef_coco.json      # RLE per frame and object
  napari-sam2v export reef.zarr --to tiff --out reef_labels.tif --pixel-size 0.8 --unit mm
"""


def register(commands: Any) -> None:
    """Add the ``export`` command to the sub-command parsers."""
    parser = add_command(
        commands,
        "export",
        help="export a result store as TIFF, PNG masks or COCO JSON",
        description=(
            "Export the labels of a result store: an ImageJ-compatible label TIFF stack, "
            "a PNG sequence (instance maps, or one mask per object with --per-object), "
            "or COCO-style JSON with run-length-encoded masks per frame and object."
        ),
        examples=_EXAMPLES,
    )
    parser.add_argument("result", metavar="R.zarr", help="result store written by 'track'")
    parser.add_argument("--to", required=True, choices=TARGETS, help="export format")
    parser.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="output file (tiff, coco; a folder gets labels.tif or coco.json) or folder (png)",
    )
    parser.add_argument(
        "--per-object",
        action="store_true",
        help="png: a folder of 0/255 masks per object (overlaps kept when the store has "
        "per-object masks) instead of 16-bit instance maps",
    )
    add_calibration_options(parser, default="from the store's metadata")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``napari-sam2v export``."""
    from napari_sam2v.store import exports, open_result

    result = open_result(args.result)
    given = calibration_options(args)
    if args.to == "png" and any_given(given):
        raise InputError("--pixel-size and --frame-interval apply to --to tiff and coco only")
    if args.to == "png":
        mode = "objects" if args.per_object else "instance"
        files = exports.export_png(result, args.out, mode=mode)
        print(f"wrote {len(files)} PNG files into {args.out}")
        return EXIT_OK
    calibration = result.calibration.overridden(**given)  # PNG masks carry none
    if args.per_object:
        raise InputError("--per-object applies to --to png only")
    writer = exports.export_tiff if args.to == "tiff" else exports.export_coco
    print(f"wrote {writer(result, args.out, calibration=calibration)}")
    return EXIT_OK
