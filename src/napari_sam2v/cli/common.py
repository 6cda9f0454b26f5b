"""Helpers shared by the CLI commands: parser construction, argument types, output."""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

__all__ = [
    "EXIT_ERROR",
    "EXIT_FAILED",
    "EXIT_OK",
    "HelpFormatter",
    "add_command",
    "format_table",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "print_error",
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


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Align rows under headers as a plain-text table."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)
