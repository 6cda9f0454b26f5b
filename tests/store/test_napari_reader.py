"""Opening result stores in napari: our reader and napari-ome-zarr."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import zarr

from napari_sam2v._napari_io import get_result_reader
from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.prompts import Prompt
from napari_sam2v.store import open_result
from napari_sam2v.store.pipeline import track
from tests.store.fake_engine import FakeEngine

needs_display = pytest.mark.skipif(
    sys.platform.startswith("linux") and not os.environ.get("DISPLAY"),
    reason="needs a display: run under xvfb-run",
)


@pytest.fixture
def store(tmp_path, disk_video):
    frames, _ = disk_video
    prompts = Prompts(
        [],
        [
            Prompt(0, 1, points=[[30, 30], [5, 5]], labels=[1, 0]),
            Prompt(0, 2, points=[[90, 70]], box=[80, 60, 100, 80]),
        ],
    )
    track(frames, prompts, tmp_path / "r.zarr", engine=FakeEngine())
    return tmp_path / "r.zarr"


def test_reader_returns_image_writable_labels_and_prompts(store, tmp_path, disk_video):
    frames, truth = disk_video
    assert get_result_reader(str(tmp_path)) is None
    assert get_result_reader(str(tmp_path / "other.zarr")) is None
    reader = get_result_reader(str(store))
    assert reader is not None
    layers = reader(str(store))
    kinds = [kind for _, _, kind in layers]
    assert kinds == ["image", "labels", "points", "shapes"]
    image, labels, points, shapes = (data for data, _, _ in layers)
    np.testing.assert_array_equal(np.asarray(image[4]), frames[4])
    assert isinstance(labels, zarr.Array) and not labels.read_only
    np.testing.assert_array_equal(labels[5], truth[5])
    np.testing.assert_array_equal(points, [[0, 30, 30], [0, 5, 5], [0, 70, 90]])
    assert layers[2][1]["features"]["label"] == [1, 0, 1]
    np.testing.assert_array_equal(shapes[0][0], [0, 60, 80])
    # every layer names its store, so a calibration saved later rescales all of them
    owners = {meta["metadata"]["sam2v_result"] for _, meta, _ in layers}
    assert owners == {str(open_result(store).path)}
    # the frames keep the store's calibration (a new session on them records it)
    video_meta = layers[0][1]["metadata"]
    assert video_meta["calibration"] == open_result(store).calibration.to_dict()
    assert "video_path" not in video_meta  # an array input: nothing to reference


def test_a_store_whose_video_moved_opens_its_labels_and_says_so(tmp_path):
    """A camera video is referenced, not copied: once it moves, the reader says why."""
    import shutil

    from napari_sam2v.samples import load_reef

    video = tmp_path / "dive.mp4"
    shutil.copy(load_reef().video_path, video)
    prompts = Prompts([], [Prompt(0, 1, points=[[30, 30]])])
    track(video, prompts, tmp_path / "m.zarr", engine="classic", end=1)
    video.rename(tmp_path / "elsewhere.mp4")
    with pytest.warns(UserWarning, match=r"m\.zarr: its video .*dive\.mp4 is missing or has"):
        layers = get_result_reader(str(tmp_path / "m.zarr"))(str(tmp_path / "m.zarr"))
    assert [kind for _, _, kind in layers] == ["labels", "points"]


@pytest.mark.gui
@needs_display
def test_napari_opens_store_and_paint_writes_to_disk(store, make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open(str(store), plugin="napari-sam2v")
    labels = next(layer for layer in layers if layer._type_string == "labels")
    assert labels.data.shape == (12, 96, 128)
    labels.paint((3, 50, 50), 2, refresh=True)
    assert int(open_result(store).labels[3, 50, 50].compute()) == 2
    # a new label painted by hand (no object has it) is drawn, not transparent
    assert labels.colormap.map(np.array([0, 99]))[:, 3].tolist() == [0.0, 1.0]


@pytest.mark.gui
@needs_display
def test_napari_ome_zarr_plugin_finds_the_labels(store, make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open(str(store), plugin="napari-ome-zarr")
    kinds = {layer._type_string for layer in viewer.layers}
    assert "labels" in kinds
    label_layer = next(layer for layer in viewer.layers if layer._type_string == "labels")
    assert label_layer.data.shape[-3:] == (12, 96, 128) or label_layer.data[0].shape == (
        12,
        96,
        128,
    )


def test_video_reader_opens_camera_video_lazily_with_its_frame_rate(tmp_path):
    import shutil

    import dask.array as da

    from napari_sam2v._napari_io import get_video_reader
    from napari_sam2v.samples import load_reef

    video = tmp_path / "DIVE.MP4"  # cameras write upper-case names
    shutil.copy(load_reef().video_path, video)
    reader = get_video_reader(str(video))
    assert reader is not None
    ((data, meta, kind),) = reader(str(video))
    assert kind == "image" and isinstance(data, da.Array) and data.shape == (48, 288, 384, 3)
    assert meta["rgb"] and meta["name"] == "DIVE"
    assert meta["metadata"]["video_path"] == str(video)  # the store will reference it
    assert meta["scale"][0] == 1 and meta["units"][0] == "pixel"  # the slider counts frames
    assert meta["metadata"]["calibration"]["frame_interval"] == pytest.approx(1 / 12)
    for other in (tmp_path / "missing.mp4", tmp_path / "cells.tif", tmp_path):
        assert get_video_reader(str(other)) is None


@pytest.mark.gui
@needs_display
def test_napari_opens_a_video_and_the_tracker_references_it(tmp_path, make_napari_viewer):
    import shutil

    from napari_sam2v.samples import load_reef

    video = tmp_path / "dive.mp4"
    shutil.copy(load_reef().video_path, video)
    viewer = make_napari_viewer()
    # File > Open asks which reader (napari's builtin one loads every frame into memory)
    (layer,) = viewer.open(str(video), plugin="napari-sam2v")
    _, tracker = viewer.window.add_plugin_dock_widget("napari-sam2v", "SAM 2 video tracker")
    tracker.form.layer_combo.setCurrentText(layer.name)
    tracker.form.engine_combo.setCurrentIndex(tracker.form.engine_combo.findData("classic"))
    assert tracker.start_session(tmp_path / "dive.zarr")
    tracker.session.close()
    stored = open_result(tmp_path / "dive.zarr")
    assert not stored.image_copied and stored.video_path == str(video)
    assert stored.calibration.frame_interval == pytest.approx(1 / 12)
