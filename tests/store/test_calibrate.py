"""Rewriting a result store's calibration: provenance, OME-Zarr scales, crash safety."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_sam2v._napari_io import get_result_reader
from napari_sam2v.engines.base import FrameResult
from napari_sam2v.errors import StoreError, StoreLockedError
from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.prompts import Prompt
from napari_sam2v.store import ResultStore, layout, open_result
from napari_sam2v.store.calibrate import HISTORY_KEY
from napari_sam2v.store.pipeline import track
from napari_sam2v.types import Calibration, ObjectInfo
from tests.store.fake_engine import FakeEngine

MICRONS = Calibration(pixel_size=0.65, unit="um", frame_interval=10.0, time_unit="min")


def _prompts() -> Prompts:
    return Prompts(
        [ObjectInfo(1, "cell", "#ff8800"), ObjectInfo(2, "other")],
        [Prompt(0, 1, points=[[30, 30]]), Prompt(0, 2, points=[[90, 70]])],
    )


def _ngff(group_dir, ngff_version: str) -> dict:
    """The NGFF attributes of a group, read from the file as any NGFF reader does."""
    if ngff_version == "0.4":
        return json.loads((group_dir / ".zattrs").read_text())
    return json.loads((group_dir / "zarr.json").read_text())["attributes"]["ome"]


def _scale_and_units(ngff: dict) -> tuple[list[float], list[str | None]]:
    multiscale = ngff["multiscales"][0]
    scale = multiscale["datasets"][0]["coordinateTransformations"][0]["scale"]
    return scale, [axis.get("unit") for axis in multiscale["axes"]]


@pytest.mark.parametrize("ngff_version", ["0.4", "0.5"])
def test_rewrites_provenance_and_every_ngff_scale(tmp_path, disk_video, ngff_version) -> None:
    frames, truth = disk_video
    path = tmp_path / "r.zarr"
    store = ResultStore.create(
        path,
        n_frames=len(frames),
        frame_shape=frames.shape[1:],
        prompts=_prompts(),
        image=frames,
        ngff_version=ngff_version,
    )
    for t in range(len(frames)):
        store.write_frame(FrameResult(t, {1: truth[t] == 1, 2: truth[t] == 2}))
    labels_before = np.asarray(open_result(path).labels)
    label_meta = _ngff(path / "labels" / "objects", ngff_version)["image-label"]

    assert store.set_calibration(MICRONS) == Calibration()
    assert store.calibration == MICRONS
    store.close()

    result = open_result(path)
    assert result.calibration == MICRONS
    assert result.metadata[HISTORY_KEY][0]["calibration"] == Calibration().to_dict()
    np.testing.assert_array_equal(np.asarray(result.labels), labels_before)
    assert result.frames_done.all()
    for group in (path / "labels" / "objects", path):  # the labels, then the copied frames
        scale, units = _scale_and_units(_ngff(group, ngff_version))
        assert scale == [10.0, 0.65, 0.65]
        assert units == ["minute", "micrometer", "micrometer"]
    # the rest of the NGFF metadata (colours, names, the image link) is kept as it was
    assert _ngff(path / "labels" / "objects", ngff_version)["image-label"] == label_meta
    # napari opens the store with the new pixel size (time stays in frames)
    layers = get_result_reader(str(path))(str(path))
    for _, kwargs, _ in layers[:2]:
        assert tuple(kwargs["scale"]) == (1.0, 0.65, 0.65)


def test_multichannel_image_keeps_its_channel_axis(tmp_path) -> None:
    frames = np.zeros((3, 16, 16, 2), np.uint8)  # (t, y, x, c): two fluorescence channels
    path = tmp_path / "c.zarr"
    with ResultStore.create(
        path, n_frames=3, frame_shape=(16, 16), prompts=Prompts(), image=frames
    ) as store:
        assert store.meta["image"]["axes"] == "tcyx"
        store.set_calibration(MICRONS)
    scale, units = _scale_and_units(_ngff(path, "0.4"))
    assert scale == [10.0, 1.0, 0.65, 0.65]
    assert units == ["minute", None, "micrometer", "micrometer"]
    assert _scale_and_units(_ngff(path / "labels" / "objects", "0.4"))[0] == [10.0, 0.65, 0.65]


def test_history_grows_only_on_a_change_and_back_to_pixels_works(tmp_path, disk_video) -> None:
    frames, _ = disk_video
    track(frames, _prompts(), tmp_path / "r.zarr", engine=FakeEngine(), copy_image=False)
    with ResultStore.open(tmp_path / "r.zarr") as store:
        store.set_calibration(MICRONS)
        store.set_calibration(MICRONS)  # the same again: nothing to record
        assert len(store.meta[HISTORY_KEY]) == 1
        assert store.set_calibration(Calibration()) == MICRONS
    result = open_result(tmp_path / "r.zarr")
    assert result.calibration == Calibration()
    assert [Calibration.from_dict(e["calibration"]) for e in result.metadata[HISTORY_KEY]] == [
        Calibration(),
        MICRONS,
    ]
    scale, units = _scale_and_units(_ngff(tmp_path / "r.zarr" / "labels" / "objects", "0.4"))
    assert scale == [1.0, 1.0, 1.0] and units == [None, None, None]
    # without copied frames the root is no NGFF image, and stays none
    assert "multiscales" not in _ngff(tmp_path / "r.zarr", "0.4")


def test_a_crash_between_files_leaves_a_readable_store_and_a_rerun_finishes(
    tmp_path, disk_video, monkeypatch
) -> None:
    frames, _ = disk_video
    path = tmp_path / "r.zarr"
    track(frames, _prompts(), path, engine=FakeEngine(), copy_image=True)
    real = layout.atomic_write_json
    calls: list[object] = []

    def crash_on_root(target, data, **kwargs):
        calls.append(target)
        if len(calls) == 2:  # the labels file is written, the root is not
            raise OSError(28, "No space left on device")
        real(target, data, **kwargs)

    monkeypatch.setattr(layout, "atomic_write_json", crash_on_root)
    with ResultStore.open(path) as store:
        with pytest.raises(StoreError, match="cannot rewrite the calibration"):
            store.set_calibration(MICRONS)
        assert store.calibration == Calibration()  # the open store did not change its mind
    result = open_result(path)  # every file still parses, and the provenance is the old one
    assert result.calibration == Calibration() and result.frames_done.all()
    assert not list(path.rglob("*.tmp"))
    monkeypatch.setattr(layout, "atomic_write_json", real)
    with ResultStore.open(path) as store:
        store.set_calibration(MICRONS)  # the same call again finishes the change
    assert open_result(path).calibration == MICRONS
    assert _scale_and_units(_ngff(path, "0.4"))[0] == [10.0, 0.65, 0.65]


def test_a_store_held_by_a_writer_is_refused(tmp_path, disk_video) -> None:
    frames, _ = disk_video
    track(frames, _prompts(), tmp_path / "r.zarr", engine=FakeEngine())
    with ResultStore.open(tmp_path / "r.zarr"), pytest.raises(StoreLockedError):
        ResultStore.open(tmp_path / "r.zarr")
    with ResultStore.open(tmp_path / "r.zarr") as store, pytest.raises(TypeError):
        store.set_calibration({"pixel_size": 0.65})  # type: ignore[arg-type]
    assert open_result(tmp_path / "r.zarr").calibration == Calibration()
