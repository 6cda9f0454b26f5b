"""The ``napari-sam2v`` command: track, measure, export, calibrate, demo, models, batch, gui.

Every command is a thin front end over the Qt-free core. Expected problems
(:class:`~napari_sam2v.errors.Sam2vError`) print one line ``error: ...`` and exit
with status 2; Ctrl-C exits with status 130 and leaves resumable output.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from napari_sam2v._version import __version__
from napari_sam2v.cli import batch, calibrate, demo, export, gui, measure, models, track
from napari_sam2v.cli.common import EXIT_ERROR, HelpFormatter, print_error
from napari_sam2v.cli.interrupt import EXIT_INTERRUPTED
from napari_sam2v.errors import Sam2vError

__all__ = ["build_parser", "main"]

_EXAMPLES = """\
examples:
  napari-sam2v demo                                   # the whole pipeline on the bundled samples
  napari-sam2v track reef.mp4 --prompts reef.json --out reef.zarr
  napari-sam2v measure reef.zarr --out tables/ --pixel-size 0.5 --unit mm --plots
  napari-sam2v export reef.zarr --to coco --out reef_coco.json
  napari-sam2v calibrate cells.zarr --pixel-size 0.65 --unit um
  napari-sam2v batch manifest.csv --out results/ --workers 2
  napari-sam2v models list
  napari-sam2v gui reef.mp4

Run 'napari-sam2v COMMAND --help' for the options of a command.
"""


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``napari-sam2v`` command."""
    parser = argparse.ArgumentParser(
        prog="napari-sam2v",
        description=(
            "Click objects in one frame of a video, propagate them with Segment Anything 2\n"
            "(or the weights-free classic engine), and measure them."
        ),
        epilog=_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"napari-sam2v {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (track, measure, export, calibrate, demo, models, batch, gui):
        module.register(commands)
    return parser


@contextlib.contextmanager
def _plain_warnings() -> Iterator[None]:
    """Show warnings as one ``warning: ...`` line, without Python's source excerpt."""

    def show(message: Warning | str, *args: Any, **kwargs: Any) -> None:
        print(f"warning: {message}", file=sys.stderr)

    previous = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``napari-sam2v`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 success, 1 a batch with failed videos, 2 an error (bad
        input, missing weights, ...), 130 interrupted by Ctrl-C.
    """
    parser = build_parser()
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        with _plain_warnings():
            return int(args.run(args))
    except Sam2vError as exc:
        print_error(str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Output piped into a closed reader (`| head`): not an error of ours.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
