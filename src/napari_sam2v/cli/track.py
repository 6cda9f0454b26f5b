"""``napari-sam2v track``: propagate prompts through a video into a result store."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from collections.abc import Iterator
from typing import Any

from napari_sam2v.cli.common import (
    EXIT_OK,
    add_calibration_options,
    add_command,
    calibration_options,
    non_negative_int,
    note_default_time_unit,
)
from napari_sam2v.cli.interrupt import EXIT_INTERRUPTED, CancelOnInterrupt
from napari_sam2v.cli.progress import ProgressPrinter
from napari_sam2v.engines.sam2.registry import DEVICES, PRECISIONS
from napari_sam2v.errors import EngineError, StoreExistsError

__all__ = ["add_engine_options", "engine_option", "engine_options", "register", "run"]

ENGINES = ("sam2", "classic")
DIRECTIONS = ("forward", "backward", "both")

_EXAMPLES = """\
  napari-sam2v track reef.mp4 --prompts reef.json --out reef.zarr
  napari-sam2v track cells.tif --prompts clicks.csv --out cells.zarr --engine classic
  napari-sam2v track reef.mp4 --prompts reef.json --out reef.zarr --model sam2.1-small \\
      --device cuda --direction both --start 40
  napari-sam2v track cells.tif --prompts clicks.csv --out cells.zarr --engine classic \\
      --option feature=phase   # phase-contrast cells
  napari-sam2v track reef.mp4 --prompts reef.json --out reef.zarr --pixel-size 0.8 --unit mm
  napari-sam2v track reef.mp4 --prompts reef.json --out reef.zarr --resume   # after Ctrl-C
"""

#: Flags whose value (when given) the printed resume command repeats.
_REPEATED_ON_RESUME = (
    "model",
    "start",
    "end",
    "channel",
    "axes",
    "pixel_size",
    "unit",
    "frame_interval",
    "time_unit",
)

#: Engine options with a dedicated flag (``--option`` may not set them).
_FLAGGED = {"model": "--model", "device": "--device", "precision": "--precision"}


def engine_option(text: str) -> tuple[str, Any]:
    """Parse ``KEY=VALUE`` of ``--option`` (numbers, true/false and none are typed).

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` has no ``=`` or the key is not a Python identifier.
    """
    key, sep, raw = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. feature=phase), got {text!r}")
    raw = raw.strip()
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return key, lowered == "true"
    if lowered == "none":
        return key, None
    for kind in (int, float):
        try:
            return key, kind(raw)
        except ValueError:
            continue
    return key, raw


def add_engine_options(parser: argparse.ArgumentParser, *, default_engine: str = "sam2") -> None:
    """Add ``--engine``, ``--model``, ``--device``, ``--precision`` and ``--option``.

    Shared with ``batch``; :func:`engine_options` reads the last two.
    """
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default=default_engine,
        help="sam2: Segment Anything 2 through transformers; classic: weights-free "
        "scikit-image tracker",
    )
    parser.add_argument(
        "--model",
        metavar="NAME|PATH",
        default=None,
        help="SAM 2 model name (see 'napari-sam2v models list'), a transformers folder or a "
        "Meta .pt checkpoint (default: the engine's default model)",
    )
    parser.add_argument("--device", choices=DEVICES, default="auto", help="compute device")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=PRECISIONS[0],
        help="sam2 only: 'mixed' runs the memory cross-attention and encoder MLPs in bf16 "
        "on CPUs with native bf16 (masks within IoU 0.99 of float32); 'fast' puts more "
        "of the model in bf16 and drifts further (see docs/performance.md); 'auto' is "
        "'mixed' on a CPU with native bf16, else 'float32'",
    )
    parser.add_argument(
        "--option",
        action="append",
        type=engine_option,
        default=[],
        metavar="KEY=VALUE",
        help="an engine option, repeatable: e.g. feature=phase (classic engine, phase-contrast "
        "cells) or memory_frames=3 (sam2); see docs/engines.md and docs/models.md",
    )


def engine_choice(args: argparse.Namespace) -> dict[str, Any]:
    """The ``engine``, ``model``, ``device`` and ``direction`` keywords of the flags."""
    return {key: getattr(args, key) for key in ("engine", "model", "device", "direction")}


def engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """The engine keyword options of ``--precision`` and ``--option``.

    Whether the engine accepts them is checked by the caller's library function
    (:func:`~napari_sam2v.engines.check_engine_options`, which ``run_batch``
    calls itself).

    Raises
    ------
    EngineError
        ``--precision`` or ``--model`` with the classic engine, or ``--option`` for a
        setting that has its own flag.
    """
    options: dict[str, Any] = dict(args.option)
    for key in options:
        if key in _FLAGGED:
            raise EngineError(f"--option {key}=...: use {_FLAGGED[key]} instead")
    if args.precision != "auto":
        if args.engine != "sam2":
            raise EngineError("--precision applies to the sam2 engine only")
        options["precision"] = args.precision
    if getattr(args, "model", None) is not None and args.engine == "classic":
        raise EngineError("--model applies to the sam2 engine only (the classic engine has none)")
    return options


def register(commands: Any) -> None:
    """Add the ``track`` command to the sub-command parsers."""
    parser = add_command(
        commands,
        "track",
        help="propagate prompts through a video into a result store",
        description=(
            "Propagate the prompts (clicks, boxes, masks) of a prompt file through a video "
            "and write the labels, frame by frame, into an OME-Zarr result store. Ctrl-C "
            "stops after the current frame; run again with --resume to continue."
        ),
        examples=_EXAMPLES,
    )
    parser.add_argument(
        "video", help="video file (mp4, mov, avi, mkv), TIFF, image folder, zarr or .npy"
    )
    parser.add_argument(
        "--prompts",
        required=True,
        metavar="P.json|P.csv",
        help="prompt file: JSON v1 or a CSV of clicks (frame,object,x,y,label)",
    )
    parser.add_argument("--out", required=True, metavar="R.zarr", help="result store to write")
    add_engine_options(parser)
    parser.add_argument(
        "--direction",
        choices=DIRECTIONS,
        default="forward",
        help="propagate forward, backward or both ways from the start frame",
    )
    parser.add_argument(
        "--start",
        type=non_negative_int,
        default=None,
        metavar="F",
        help="frame to start from (default: the first prompted frame)",
    )
    parser.add_argument(
        "--end",
        type=non_negative_int,
        default=None,
        metavar="F",
        help="last frame to process, inclusive (default: the last frame)",
    )
    parser.add_argument(
        "--channel",
        type=non_negative_int,
        default=None,
        metavar="C",
        help="channel of multi-channel (non-RGB) data",
    )
    parser.add_argument(
        "--axes",
        default=None,
        metavar="AXES",
        help="axis order of data that does not name its axes (.npy, plain zarr arrays, "
        "TIFFs without axes metadata): TYX, TYXC or TCYX",
    )
    add_calibration_options(parser, default="from the video's metadata")
    existing = parser.add_mutually_exclusive_group()  # one answer for an existing store
    existing.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run in an existing store (finished frames are kept)",
    )
    existing.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing store at --out (never a folder that is not a store)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    parser.set_defaults(run=run)


def _resume_command(args: argparse.Namespace) -> str:
    argv = ["napari-sam2v", "track", args.video, "--prompts", args.prompts, "--out", args.out]
    argv += ["--engine", args.engine, "--direction", args.direction]
    for flag in _REPEATED_ON_RESUME:
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    if args.device != "auto":
        argv += ["--device", args.device]
    if args.precision != "auto":
        argv += ["--precision", args.precision]
    for key, value in args.option:
        argv += ["--option", f"{key}={value}"]
    return shlex.join([*argv, "--resume"])


@contextlib.contextmanager
def _flags_for_an_existing_store() -> Iterator[None]:
    """Name this command's flags, not the Python keywords, when the output is a store."""
    try:
        yield
    except StoreExistsError as exc:
        raise StoreExistsError(
            f"{exc.path} already holds a result store: --resume continues it, --overwrite "
            "replaces it; or choose another --out",
            path=exc.path,
        ) from None


def run(args: argparse.Namespace) -> int:
    """Run ``napari-sam2v track``."""
    from napari_sam2v.engines import check_engine_options
    from napari_sam2v.io.prompt_files import Prompts
    from napari_sam2v.store.pipeline import track

    prompts = Prompts.load(args.prompts)
    options = engine_options(args)
    check_engine_options(args.engine, options)
    if args.frame_interval is not None and not args.time_unit:
        from napari_sam2v.io import open_video

        with open_video(args.video, axes=args.axes) as video:  # metadata only; no frame is decoded
            stored = video.metadata.calibration
        note_default_time_unit(args, stored, where=args.video, holder="its metadata")
    progress = ProgressPrinter("tracking", enabled=not args.quiet)
    with CancelOnInterrupt() as stop, progress, _flags_for_an_existing_store():
        result = track(
            args.video,
            prompts,
            args.out,
            **engine_choice(args),
            start=args.start,
            end=args.end,
            channel=args.channel,
            axes=args.axes,
            **calibration_options(args),
            resume=args.resume,
            overwrite=args.overwrite,
            progress=progress,
            cancel=stop.event,
            **options,
        )
    done = int(result.frames_done.sum())
    total = int(result.frames_done.size)
    names = ", ".join(obj.name for obj in result.objects)
    if stop.requested:
        print(
            f"interrupted: {done} of {total} frames are saved in {result.path}; resume with:\n"
            f"  {_resume_command(args)}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(
        f"wrote {result.path}: {done}/{total} frames done, {len(result.objects)} objects ({names})"
    )
    if result.random_weights:
        print(
            "note: this model has random weights (a test model); the masks are not a result",
            file=sys.stderr,
        )
    return EXIT_OK
