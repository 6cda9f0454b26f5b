"""``napari-sam2v measure``: per-frame, per-track and MSD tables from a result store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from napari_sam2v._frame_ranges import describe_ranges
from napari_sam2v.cli.common import (
    EXIT_OK,
    add_calibration_options,
    add_command,
    calibration_options,
    format_table,
    non_negative_int,
    note_default_time_unit,
)
from napari_sam2v.errors import InputError

__all__ = ["register", "run", "summary_rows"]

FORMATS = ("csv", "parquet", "xlsx")

_EXAMPLES = """\
  napari-sam2v measure reef.zarr --out reef_tables/
  napari-sam2v measure reef.zarr --out reef_tables/ --pixel-size 0.5 --unit mm \\
      --frame-interval 0.04 --format xlsx --plots
  napari-sam2v measure cells.zarr --out cells_tables/ --format parquet
  napari-sam2v measure cells.zarr --out cells_tables/ --intensity   # the image copy in the store
  napari-sam2v measure cells.zarr --out cells_tables/ --image cells.tif --channel 1
"""


def register(commands: Any) -> None:
    """Add the ``measure`` command to the sub-command parsers."""
    parser = add_command(
        commands,
        "measure",
        help="measure areas and trajectories of a result store",
        description=(
            "Compute per-frame (area, centroid, shape; intensity with --intensity), "
            "per-track (path length, speeds, growth) and MSD tables from a result store, in "
            "physical units when a calibration is known (from the store, or given here), and "
            "write them with a JSON sidecar of units."
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
    parser.add_argument(
        "--intensity",
        action="store_true",
        help="also measure each object's mean and integrated intensity on every frame, in "
        "the copy of the frames that the store holds (or in the tracked file, when it is "
        "still unchanged at its recorded path); see --image otherwise",
    )
    parser.add_argument(
        "--image",
        metavar="PATH",
        default=None,
        help="measure intensities in these frames (implies --intensity): the tracked video, "
        "or another recording of the same frames, with the labels' frame count and size",
    )
    parser.add_argument(
        "--channel",
        type=non_negative_int,
        default=None,
        metavar="C",
        help="channel of multi-channel frames to measure intensities in (default: the channel "
        "tracked, if one was chosen; else every channel, one column each)",
    )
    parser.add_argument(
        "--axes",
        default=None,
        metavar="AXES",
        help="axis order of --image when it does not name its axes (.npy, plain zarr "
        "arrays, TIFFs without axes metadata): TYX, TYXC or TCYX",
    )
    parser.set_defaults(run=run)


def _tracked_channel(result: Any) -> int | None:
    channel = (result.metadata.get("source") or {}).get("channel")
    return None if channel is None else int(channel)


def _image_from_store(result: Any, args: argparse.Namespace) -> Any:
    """The store's copy of the frames (or its unchanged input file), one channel if asked.

    Channels are numbered as in the input file. A copy of the tracked channel alone
    gives that channel; another one comes from the input file while it is unchanged
    (:meth:`~napari_sam2v.store.Result.open_image`).
    """
    video = result.open_image(channel=args.channel)
    if video is None:
        from napari_sam2v.store.pipeline import COPY_LIMIT_BYTES

        where = f" ({result.video_path})" if result.video_path else ""
        raise InputError(
            f"{args.result} holds no copy of the tracked frames (track copies microscopy "
            f"inputs up to {COPY_LIMIT_BYTES / 1024**3:g} GiB, never camera videos) and its input"
            f"{where} is no longer at its recorded path, or has changed: give the frames "
            "with --image PATH (the video that was tracked)"
        )
    return video


def _image_from_file(args: argparse.Namespace, result: Any) -> Any:
    """``--image PATH`` opened once, with the asked (or the tracked) channel.

    Without ``--channel``, the tracked channel is taken from a multi-channel file,
    and a one-channel file (that channel saved alone) is used as it is.
    """
    from napari_sam2v.io import open_video

    channel = args.channel if args.channel is not None else _tracked_channel(result)
    if channel is None:
        return open_video(args.image, axes=args.axes)
    try:
        return open_video(args.image, channel=channel, axes=args.axes)
    except InputError as exc:
        if args.channel is not None:
            raise  # it names the channels the file has
        video = open_video(args.image, axes=args.axes)
        if video.ndim == 3:
            return video
        video.close()
        raise InputError(f"{exc} (the tracked channel); choose one with --channel") from None


def _check_frames(image: Any, result: Any, name: str) -> None:
    """Refuse intensities whose frame count or frame size differs from the labels'."""
    n, height, width = (int(v) for v in result.shape)
    got_n, got_h, got_w = (int(v) for v in image.shape[:3])
    if got_n != n:
        raise InputError(
            f"{name} has {got_n} frames but the labels of {result.path} have {n}: measure "
            "intensities in the frames that were tracked"
        )
    if (got_h, got_w) != (height, width):
        raise InputError(
            f"{name} has {got_w}x{got_h}-pixel frames but the labels of {result.path} are "
            f"{width}x{height}: measure intensities in frames of the tracked size"
        )


def _intensity_image(result: Any, args: argparse.Namespace) -> Any:
    """The frames for ``--intensity`` / ``--image``, checked against the labels."""
    if args.axes is not None and args.image is None:
        raise InputError("--axes gives the axis order of --image")
    if args.image is not None:
        image, name = _image_from_file(args, result), f"--image {args.image}"
    elif args.intensity:
        image, name = _image_from_store(result, args), f"the frames of {args.result}"
    else:
        if args.channel is not None:
            raise InputError("--channel chooses the channel of --intensity or --image")
        return None
    try:
        _check_frames(image, result, name)
    except InputError:
        image.close()
        raise
    return image


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
    if result.contains(args.out):
        raise InputError(
            f"--out {args.out} is inside the result store {args.result}: write the tables "
            "next to it (nothing is written into a store but its own data)"
        )
    note_default_time_unit(args, result.calibration, where=args.result)
    image = _intensity_image(result, args)
    try:
        measurements = measure(result, image, **calibration_options(args))
    finally:
        if image is not None:
            image.close()
    if measurements.untracked_frames:
        spans = describe_ranges(measurements.untracked_frames)
        if result.status == "partial":  # the run ended: its direction or range left them
            finish = (
                "Track them with another --direction (both, or backward from the prompts) "
                "or --start/--end range, into a new store"
            )
        else:  # interrupted, cancelled or failed: resuming continues it
            finish = "Run the same track command with --resume to finish it"
        print(
            f"note: {args.result} is not complete ({result.status}): frames {spans} were "
            "never tracked; the presence table marks them tracked=False, which is not the "
            f"objects being absent. {finish}",
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
