"""``napari-sam2v gui``: open napari with the tracker docked (the only Qt command)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from napari_sam2v.cli.common import (
    EXIT_OK,
    add_calibration_options,
    add_command,
    calibration_options,
)
from napari_sam2v.errors import Sam2vError
from napari_sam2v.types import CalibrationKeywords, any_given

__all__ = ["PLUGIN", "WIDGET", "launch", "register", "run"]

#: Plugin and widget names of the tracker dock widget in ``napari.yaml``.
PLUGIN = "napari-sam2v"
WIDGET = "SAM 2 video tracker"

_EXAMPLES = """\
  napari-sam2v gui                  # empty viewer with the tracker docked
  napari-sam2v gui reef.mp4         # the video loaded lazily
  napari-sam2v gui dive.mp4 --pixel-size 0.8 --unit mm   # recorded with the results
  napari-sam2v gui reef.zarr        # reopen a result store (image, labels, prompts)
"""


class GuiUnavailableError(Sam2vError, ImportError):
    """napari (or its Qt backend) is not installed."""


def register(commands: Any) -> None:
    """Add the ``gui`` command to the sub-command parsers."""
    parser = add_command(
        commands,
        "gui",
        help="open napari with the SAM 2 video tracker docked",
        description=(
            "Open napari with the 'SAM 2 video tracker' widget docked and, when given, the "
            "video (read lazily) or a result store loaded. Needs the gui extra: "
            "pip install 'napari-sam2v[gui]'."
        ),
        examples=_EXAMPLES,
    )
    parser.add_argument("video", nargs="?", default=None, metavar="VIDEO", help="video or store")
    add_calibration_options(parser, default="from the video's metadata")
    parser.set_defaults(run=run)


def _import_napari() -> Any:
    try:
        import napari
    except ImportError as exc:
        raise GuiUnavailableError(
            f"the gui needs napari and a Qt backend ({exc}); install them with: "
            "pip install 'napari-sam2v[gui]'"
        ) from None
    return napari


def launch(
    video: str | Path | None = None,
    *,
    run_event_loop: bool = True,
    pixel_size: float | None = None,
    unit: str | None = None,
    frame_interval: float | None = None,
    time_unit: str | None = None,
) -> tuple[Any, Any]:
    """Open a napari viewer with the tracker widget docked.

    Parameters
    ----------
    video : str or pathlib.Path, optional
        A video (opened lazily with :func:`napari_sam2v.io.open_video`) or a
        result store (``*.zarr`` written by ``track``, opened with the plugin's
        reader).
    run_event_loop : bool, optional
        Start napari's event loop and return when the window closes (default);
        ``False`` returns at once (scripts and tests).
    pixel_size, unit, frame_interval, time_unit : optional
        Calibration of the video, laid over its metadata (see
        :meth:`~napari_sam2v.types.Calibration.overridden`). The image layer is
        scaled by its pixel size (time stays in frames) and carries it in its
        metadata, so the tracker records it in the result store. Not for a result
        store, which has its own.

    Returns
    -------
    (napari.Viewer, QWidget)
        The viewer and the docked tracker widget.

    Raises
    ------
    GuiUnavailableError
        If napari is not installed.
    InputFileNotFoundError
        If ``video`` does not exist.
    InputError
        If a calibration is given for a result store or without a video, or is
        incomplete.
    """
    from napari_sam2v.errors import InputError, InputFileNotFoundError

    given: CalibrationKeywords = {
        "pixel_size": pixel_size,
        "unit": unit,
        "frame_interval": frame_interval,
        "time_unit": time_unit,
    }
    if video is not None and not Path(video).exists():
        raise InputFileNotFoundError(f"{video}: no such file or folder")
    if any_given(given) and (video is None or _is_result_store(Path(video))):
        raise InputError(
            "a calibration applies to a video; a result store has its own "
            "(change it with napari-sam2v calibrate)"
        )
    napari = _import_napari()
    source = None
    if video is not None and not _is_result_store(Path(video)):
        from napari_sam2v.io import open_video

        source = open_video(video)  # errors (corrupt file, ...) before any window opens
        calibration = source.metadata.calibration.overridden(**given)
    viewer = napari.Viewer(title="napari-sam2v")
    if video is not None and source is None:
        viewer.open(str(video), plugin=PLUGIN)
    elif video is not None and source is not None:
        from napari_sam2v._napari_io import video_layer

        data, kwargs, _ = video_layer(video, source, calibration)
        viewer.add_image(data, **kwargs)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    if run_event_loop:
        napari.run()
    return viewer, widget


def _is_result_store(path: Path) -> bool:
    return path.is_dir() and (path / "labels").is_dir()


def run(args: argparse.Namespace) -> int:
    """Run ``napari-sam2v gui``."""
    launch(args.video, **calibration_options(args))
    return EXIT_OK
