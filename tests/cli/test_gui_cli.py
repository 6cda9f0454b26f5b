"""``napari-sam2v gui``: napari with the tracker docked, and clear errors without napari."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from napari_sam2v.samples import load_reef
from tests.cli.conftest import cli, cli_env, write_video


@pytest.mark.gui
def test_gui_docks_the_tracker_with_the_video_loaded(qtbot) -> None:
    from napari_sam2v.cli.gui import launch

    reef = load_reef()
    viewer, widget = launch(reef.video_path, run_event_loop=False)
    try:
        layer = viewer.layers["reef"]
        assert layer.rgb and layer.data.shape == (48, 288, 384, 3)
        # Lazy: the video is a dask array, not decoded into memory.
        assert type(layer.data).__module__.startswith("dask")
        assert layer.scale[0] == 1  # the slider counts frames; the interval is in metadata
        assert layer.metadata["calibration"]["frame_interval"] == pytest.approx(1 / 12)
        assert widget.form.layer_combo.currentText() == "reef"
    finally:
        viewer.close()


@pytest.mark.gui
def test_gui_calibration_reaches_the_layer_and_the_tracker(qtbot, tmp_path: Path) -> None:
    from napari_sam2v.cli.gui import launch
    from napari_sam2v.errors import InputError

    reef = load_reef()
    viewer, widget = launch(reef.video_path, run_event_loop=False, pixel_size=0.8, unit="mm")
    try:
        layer = viewer.layers["reef"]
        assert list(layer.scale) == pytest.approx([1.0, 0.8, 0.8, 1.0][: layer.ndim])
        assert layer.metadata["video_path"] == str(reef.video_path)
        assert widget.start_session(tmp_path / "reef.zarr")
        cal = widget.session.calibration
        assert (cal.pixel_size, cal.unit, cal.time_unit) == (0.8, "mm", "s")
        assert cal.frame_interval == pytest.approx(1 / 12)
    finally:
        viewer.close()
    with pytest.raises(InputError, match="needs a unit"):
        launch(reef.video_path, run_event_loop=False, pixel_size=0.8)
    store = tmp_path / "reef.zarr"
    with pytest.raises(InputError, match="result store has its own"):
        launch(store, run_event_loop=False, pixel_size=0.8, unit="mm")


@pytest.mark.gui
def test_gui_reopens_a_result_store(qtbot, tmp_path: Path) -> None:
    from napari_sam2v.cli.gui import launch
    from napari_sam2v.store.pipeline import track

    video, prompts = write_video(tmp_path, "disks", n_frames=6)
    store = tmp_path / "disks.zarr"
    track(video, prompts, store, engine="classic")
    viewer, widget = launch(store, run_event_loop=False)
    try:
        kinds = {type(layer).__name__ for layer in viewer.layers}
        assert "Labels" in kinds and "Image" in kinds
        labels = next(layer for layer in viewer.layers if type(layer).__name__ == "Labels")
        assert labels.data.shape[0] == 6
        assert widget is not None
    finally:
        viewer.close()


def test_gui_without_napari_says_how_to_install() -> None:
    code = (
        "import sys; sys.modules['napari'] = None\n"
        "from napari_sam2v.cli.main import main\n"
        "sys.exit(main(['gui']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=cli_env()
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: the gui needs napari and a Qt backend")
    assert "pip install 'napari-sam2v[gui]'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_gui_missing_video_fails_before_any_window(tmp_path: Path) -> None:
    proc = cli("gui", tmp_path / "nope.mp4")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {tmp_path / 'nope.mp4'}: no such file or folder"


def test_core_commands_never_import_qt() -> None:
    code = (
        "import sys\n"
        "from napari_sam2v.cli.main import main, build_parser\n"
        "import napari_sam2v.cli.demo, napari_sam2v.batch\n"
        "build_parser()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'qtpy', 'PyQt5', 'PySide2', 'PyQt6', 'PySide6', 'magicgui'))\n"
        "print(bad)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=cli_env()
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
