"""Multi-channel videos in the docks: one (t, y, x) layer per channel, lined up with the result.

napari lines layers up by their last axes, so a (t, y, x) result beside a (t, c, y, x)
layer would put its time on the channel slider. These tests fail if that comes back.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam2v.store import open_result
from tests.conftest import make_disk_video

pytestmark = pytest.mark.gui


@pytest.fixture
def two_channels() -> tuple[np.ndarray, np.ndarray]:
    """(t, c, y, x): a disk moving right in channel 0, another moving left in channel 1."""
    first, truth0 = make_disk_video(10, (64, 96), starts=((20.0, 20.0),), velocity=((0.0, 3.0),))
    second, truth1 = make_disk_video(10, (64, 96), starts=((44.0, 76.0),), velocity=((0.0, -3.0),))
    return np.stack([first, second], axis=1), truth1


def test_a_channel_stack_is_split_and_its_result_lines_up(
    tracker, two_channels, tmp_path, wait_jobs
) -> None:
    viewer, widget = tracker
    stack, truth = two_channels
    viewer.add_image(stack, name="fluo", scale=(1.0, 1.0, 0.5, 0.5))
    widget.form.layer_combo.setCurrentText("fluo")
    assert widget.form.channel_spin.isVisible() or widget.form.channel_spin.maximum() == 1
    widget.form.channel_spin.setValue(1)
    widget.form.engine_combo.setCurrentIndex(widget.form.engine_combo.findData("classic"))
    assert widget.start_session(tmp_path / "fluo.zarr")

    assert "fluo" not in viewer.layers
    channels = [viewer.layers[f"fluo (channel {c})"] for c in (0, 1)]
    for c, layer in enumerate(channels):
        assert layer.data.shape == (10, 64, 96)
        np.testing.assert_array_equal(layer.data[3], stack[3, c])
        np.testing.assert_allclose(layer.scale, (1.0, 0.5, 0.5))
        assert layer.metadata["channel"] == c
    assert widget.image_layer is channels[1]
    assert widget.form.layer_combo.currentText() == "fluo (channel 1)"
    labels = widget.labels_layer
    assert viewer.dims.ndim == 3 and labels.ndim == 3
    world = [6, 20.0, 30.0]
    np.testing.assert_allclose(labels.world_to_data(world), channels[1].world_to_data(world))

    points = widget.prompt_layers.points
    points.add([2, 44, 70])  # on channel 1's disk, frame 2 (it moved 6 px left)
    wait_jobs(widget)
    np.testing.assert_array_equal(points.data, [[2, 44, 70]])  # the click stays put
    widget.propagate()
    wait_jobs(widget)
    result = open_result(tmp_path / "fluo.zarr")
    assert result.frames_done.all()
    for t in (0, 6, 9):  # the tracked channel's disk, on its own frame
        mask = result.labels[t].compute() == 1
        iou = np.logical_and(mask, truth[t] == 1).sum() / np.logical_or(mask, truth[t] == 1).sum()
        assert iou > 0.7, (t, iou)
    np.testing.assert_array_equal(result.open_image()[5], stack[5, 1])

    labels.paint((6, 10, 10), 2, refresh=True)  # frame 6 on screen: frame 6 in the store
    assert result.labels_array(writable=False)[6, 10, 10] == 2
    assert result.labels_array(writable=False)[0, 10, 10] == 0


def test_the_store_default_follows_the_picked_layer(tracker, tmp_path) -> None:
    """A default store path changes with the layer; a path the user typed stays."""
    viewer, widget = tracker
    first, _ = make_disk_video(4, (32, 32))
    viewer.add_image(first, name="first")
    viewer.add_image(first[:, ::-1], name="second")
    store = widget.form.store_edit
    widget.form.layer_combo.setCurrentText("first")
    assert store.text().endswith("first_sam2v.zarr")
    widget.form.layer_combo.setCurrentText("second")
    assert store.text().endswith("second_sam2v.zarr")
    store.setText(str(tmp_path / "mine.zarr"))
    widget.form.layer_combo.setCurrentText("first")
    assert store.text() == str(tmp_path / "mine.zarr")


def test_a_multichannel_store_opens_as_one_layer_per_channel(
    tmp_path, make_napari_viewer, wait_jobs
) -> None:
    """The reader shows a store's channels as (t, y, x) layers; a save scales y and x."""
    import tifffile

    from napari_sam2v.engines import create_engine
    from napari_sam2v.io import open_video
    from napari_sam2v.io.prompt_files import Prompts
    from napari_sam2v.prompts import Prompt
    from napari_sam2v.store.pipeline import track

    frames, _ = make_disk_video(4, (48, 64), starts=((24.0, 30.0),), velocity=((0.0, 1.0),))
    two = np.stack([frames, frames[:, ::-1]], axis=1)  # (t, c, y, x), as ImageJ writes it
    tifffile.imwrite(tmp_path / "two.tif", two, imagej=True, metadata={"axes": "TCYX"})
    prompts = Prompts([], [Prompt(0, 1, points=[[30, 24]])])
    video = open_video(tmp_path / "two.tif")
    track(video, prompts, tmp_path / "c.zarr", engine=create_engine("classic"), channel=0)
    viewer = make_napari_viewer()
    layers = viewer.open(str(tmp_path / "c.zarr"), plugin="napari-sam2v")
    images = [layer for layer in layers if layer._type_string == "image"]
    assert [layer.name for layer in images] == ["c video (channel 0)", "c video (channel 1)"]
    for c, image in enumerate(images):
        assert image.data.shape == (4, 48, 64) and image.metadata["channel"] == c
        np.testing.assert_array_equal(np.asarray(image.data[2]), two[2, c])
    assert viewer.dims.ndim == 3
    _, results = viewer.window.add_plugin_dock_widget("napari-sam2v", "Tracking results")
    results.calibration.pixel_size.value = 0.5
    results.calibration.unit.value = "um"
    results.save_calibration()
    wait_jobs(results)
    for layer in [*images, viewer.layers["c objects"]]:
        np.testing.assert_allclose(layer.scale, (1.0, 0.5, 0.5))
        assert [str(u) for u in layer.units] == ["pixel", "micrometer", "micrometer"]
