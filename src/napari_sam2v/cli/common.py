"""Helpers shared by the CLI commands: parser construction, argument types, output."""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

from napari_sam2v.errors import InputError
from napari_sam2v.types import (
    DEFAULT_TIME_UNIT,
    Calibration,
    CalibrationKeywords,
    given_calibration,
    known_unit,
)

__all__ = [
    "EXIT_ERROR",
    "EXIT_FAILED",
    "EXIT_OK",
    "HelpFormatter",
    "add_calibration_options",
    "add_command",
    "calibration_options",
    "format_table",
    "length_unit_type",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "print_error",
    "time_unit_type",
]

_WIDTH = 88

EXIT_OK = 0
#: Some items of a batch failed (the others finished).
EXIT_FAILED = 1
#: An expected error (bad input, missing weights, ...): one line on stderr.
EXIT_ERROR = 2


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keep the example blocks as written; show defaults that mean something."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" not in text
            and default not in (None, False, argparse.SUPPRESS)
            and action.option_strings
            and action.nargs != 0
        ):
            text += " (default: %(default)s)"
        return text


def add_command(
    commands: Any, name: str, *, help: str, description: str, examples: str
) -> argparse.ArgumentParser:
    """Add a sub-command with its help text and an examples epilog."""
    return commands.add_parser(
        name,
        help=help,
        description=textwrap.fill(description, width=_WIDTH),
        epilog="examples:\n" + examples,
        formatter_class=HelpFormatter,
    )


def print_error(message: str) -> None:
    """Print ``error: <message>`` as one line on stderr."""
    text = " ".join(str(message).split())
    print(f"error: {text}", file=sys.stderr, flush=True)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a positive finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def length_unit_type(text: str) -> str:
    """argparse type for ``--unit``: a known length unit, as its abbreviation."""
    return _unit(text, time=False)


def time_unit_type(text: str) -> str:
    """argparse type for ``--time-unit``: a known time unit, as its abbreviation."""
    return _unit(text, time=True)


def _unit(text: str, *, time: bool) -> str:
    try:
        return known_unit(text, time=time)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_calibration_options(parser: argparse.ArgumentParser, *, default: str) -> None:
    """Add ``--pixel-size``, ``--unit``, ``--frame-interval`` and ``--time-unit``.

    Shared by ``track`` (recorded in the store) and ``measure`` (used for the
    tables); :func:`calibration_options` reads them. ``default`` says where the
    calibration comes from when a flag is left out.
    """
    parser.add_argument(
        "--pixel-size",
        type=positive_float,
        default=None,
        metavar="S",
        help=f"pixel edge length in --unit (default: {default})",
    )
    parser.add_argument(
        "--unit",
        type=length_unit_type,
        default=None,
        help="length unit of --pixel-size: nm, um, mm, cm, m or km (micron, µm, ... also work)",
    )
    parser.add_argument(
        "--frame-interval",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help=f"time between frames, in --time-unit (default: {default})",
    )
    parser.add_argument(
        "--time-unit",
        type=time_unit_type,
        default=None,
        metavar="UNIT",
        help="unit of --frame-interval: ms, s, min, h or d (default: s)",
    )


def calibration_options(args: argparse.Namespace) -> CalibrationKeywords:
    """Keyword arguments ``pixel_size``, ``unit``, ``frame_interval``, ``time_unit``.

    Read as a batch manifest row is read (:func:`~napari_sam2v.types.given_calibration`).
    """
    return given_calibration(args)


def note_default_time_unit(
    args: argparse.Namespace, stored: Calibration, *, where: str, holder: str = "the store"
) -> None:
    """Say so on stderr when ``--frame-interval`` took the default unit over another one.

    A frame interval given without ``--time-unit`` is in seconds. When the store (or
    video) at ``where`` records its interval in another unit, that is probably not
    what the user meant, so the note names the flag that keeps the stored unit.
    ``holder`` names what recorded it in the note.
    """
    if args.frame_interval is None or args.time_unit or stored.frame_interval is None:
        return
    if stored.time_unit == DEFAULT_TIME_UNIT:
        return
    print(
        f"note: {where}: --frame-interval {args.frame_interval:g} is in {DEFAULT_TIME_UNIT} "
        f"(the default unit), but {holder} records {stored.describe_interval()}; add --time-unit "
        f"{stored.time_unit} to give it in {stored.time_unit}",
        file=sys.stderr,
    )


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Align rows under headers as a plain-text table."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)
