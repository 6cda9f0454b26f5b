"""The OME-Zarr result store: layout, metadata, provenance, locking and failures."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest
import zarr

from napari_sam2v.engines.base import FrameResult, ObjectScore
from napari_sam2v.errors import EngineError, StoreError, StoreLockedError, StoreVersionError
from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.prompts import Prompt
from napari_sam2v.store import ResultStore, open_result
from napari_sam2v.store.pipeline import ProgressInfo, track
from napari_sam2v.types import Calibration, ObjectInfo
from tests.store.fake_engine import FakeEngine


@pytest.fixture
def prompts() -> Prompts:
    return Prompts(
        [ObjectInfo(1, "parrotfish", "#ff8800"), ObjectInfo(2, "diver")],
        [Prompt(0, 1, points=[[30, 30]]), Prompt(0, 2, points=[[90, 70]])],
    )


@pytest.fixture
def calibrated(disk_video):
    import dask.array as da

    from napari_sam2v.io import open_video
    from napari_sam2v.io.source import VideoMetadata

    frames, _ = disk_video
    video = open_video(frames)
    video.metadata = VideoMetadata(
        kind="array", pixel_size=0.5, unit="um", frame_interval=2.0, time_unit="s"
    )
    assert isinstance(video.to_dask(), da.Array)
    return video


def test_track_writes_ngff_labels_and_provenance(tmp_path, disk_video, prompts, calibrated):
    _, truth = disk_video
    seen: list[ProgressInfo] = []
    result = track(
        calibrated,
        prompts,
        tmp_path / "r.zarr",
        engine=FakeEngine(random_weights=True),
        progress=seen.append,
    )
    np.testing.assert_array_equal(np.asarray(result.labels), truth)
    assert result.frames_done.all() and result.complete and result.status == "complete"
    assert [p.done for p in seen] == list(range(1, 13)) and seen[-1].total == 12
    assert result.objects == prompts.objects and result.prompts == prompts
    assert result.calibration == Calibration(0.5, "um", 2.0, "s")
    assert result.random_weights and result.metadata["engine"]["engine"] == "fake"
    assert result.metadata["versions"]["zarr"] == zarr.__version__
    assert result.metadata["image"]["axes"] == "tyx"  # small arrays are copied
    scores = result.scores
    assert list(scores.columns) == ["object_id", "frame", "object_score_logit", "iou"]
    assert len(scores) == 24 and scores["iou"].iloc[0] == pytest.approx(0.6)
    # NGFF 0.4 metadata readable by ome-zarr-py
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    nodes = list(Reader(parse_url(str(tmp_path / "r.zarr" / "labels")))())
    label = next(n for n in nodes if n.metadata.get("name") == "objects")
    axes = label.metadata["axes"]
    assert [a["name"] for a in axes] == ["t", "y", "x"]
    assert axes[0]["unit"] == "second" and axes[2]["unit"] == "micrometer"
    scale = label.metadata["coordinateTransformations"][0][0]["scale"]
    assert scale == [2.0, 0.5, 0.5]
    assert label.data[0].shape == (12, 96, 128) and label.data[0].dtype == np.uint16
    attrs = zarr.open_group(str(tmp_path / "r.zarr" / "labels" / "objects")).attrs
    props = attrs["image-label"]["properties"]
    assert props == [{"label-value": 1, "name": "parrotfish"}, {"label-value": 2, "name": "diver"}]
    array = result.labels_array(writable=False)
    assert array.chunks == (1, 96, 128)


def test_ngff_05_and_reference_instead_of_copy(tmp_path, disk_video, prompts):
    frames, truth = disk_video
    result = track(
        frames,
        prompts,
        tmp_path / "r5.zarr",
        engine=FakeEngine(),
        ngff_version="0.5",
        copy_image=False,
    )
    root = zarr.open_group(str(tmp_path / "r5.zarr"))
    assert root.metadata.zarr_format == 3
    assert root["labels/objects"].attrs["ome"]["version"] == "0.5"
    np.testing.assert_array_equal(np.asarray(result.labels), truth)
    assert result.metadata["image"] is None and result.open_image() is None
    # NGFF 0.5: every array names its axes, every OME group says its version
    assert root["labels"].attrs["ome"] == {"version": "0.5", "labels": ["objects"]}
    assert root["labels/objects/0"].metadata.dimension_names == ("t", "y", "x")
    copied = track(
        frames,
        prompts,
        tmp_path / "c5.zarr",
        engine=FakeEngine(),
        ngff_version="0.5",
        keep_masks=True,
    )
    root = zarr.open_group(str(copied.path))
    assert root["0"].metadata.dimension_names == ("t", "y", "x")
    assert root["sam2v/masks"].metadata.dimension_names == ("t", "object", "y", "x")


def test_labels_array_is_writable(tmp_path, disk_video, prompts):
    frames, _ = disk_video
    result = track(frames, prompts, tmp_path / "w.zarr", engine=FakeEngine())
    array = result.labels_array(writable=True)
    array[3, :4, :4] = 7
    assert int(open_result(tmp_path / "w.zarr").labels[3, 0, 0].compute()) == 7


def test_existing_store_needs_resume_or_overwrite(tmp_path, disk_video, prompts):
    frames, _ = disk_video
    out = tmp_path / "o.zarr"
    track(frames, prompts, out, engine=FakeEngine())
    with pytest.raises(StoreError, match="already holds a result store"):
        track(frames, prompts, out, engine=FakeEngine())
    assert open_result(out).complete  # untouched
    track(frames, prompts, out, engine=FakeEngine(), overwrite=True)
    other = tmp_path / "not_a_store"
    other.mkdir()
    (other / "precious.txt").write_text("data")
    with pytest.raises(StoreError, match="not a napari-sam2v result store"):
        track(frames, prompts, other, engine=FakeEngine(), overwrite=True)
    assert (other / "precious.txt").read_text() == "data"


def test_second_writer_is_locked_out_and_stale_locks_recover(tmp_path, disk_video, prompts):
    frames, _ = disk_video
    out = tmp_path / "l.zarr"
    track(frames, prompts, out, engine=FakeEngine())
    with ResultStore.open(out):
        with pytest.raises(StoreLockedError, match="being written by process"):
            ResultStore.open(out)
        with pytest.raises(StoreLockedError):
            track(frames, prompts, out, engine=FakeEngine(), overwrite=True)
    lock = out / "sam2v" / "lock.json"
    lock.write_text(json.dumps({"pid": 2**22 + 12345, "host": os.uname().nodename}))
    with ResultStore.open(out) as store:  # dead pid: stale lock recovered
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        assert store.frames_done.all()
    assert not lock.exists()


def test_newer_format_and_foreign_folders(tmp_path, disk_video, prompts):
    frames, _ = disk_video
    out = tmp_path / "v.zarr"
    track(frames, prompts, out, engine=FakeEngine())
    root = zarr.open_group(str(out), mode="r+")
    meta = dict(root.attrs["napari_sam2v"])
    root.attrs["napari_sam2v"] = {**meta, "format_version": 99}
    with pytest.raises(StoreVersionError, match="format version 99"):
        open_result(out)
    with pytest.raises(StoreVersionError):
        track(frames, prompts, out, engine=FakeEngine(), resume=True)
    with pytest.raises(StoreError, match="no result store"):
        open_result(tmp_path / "nothing.zarr")
    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    with pytest.raises(StoreError, match="not a napari-sam2v result store"):
        open_result(tmp_path / "plain.zarr")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_output_directory(tmp_path, disk_video, prompts):
    frames, _ = disk_video
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(StoreError, match="cannot create"):
            track(frames, prompts, folder / "r.zarr", engine=FakeEngine())
    finally:
        folder.chmod(0o755)


def test_disk_full_stops_cleanly_and_resumes(tmp_path, disk_video, prompts, monkeypatch):
    frames, truth = disk_video
    out = tmp_path / "full.zarr"
    original = ResultStore._write_chunks

    def failing(self, result):
        if result.frame == 7:
            raise StoreError(f"{self.path}: cannot write frame 7 ([Errno 28] No space left)")
        return original(self, result)

    monkeypatch.setattr(ResultStore, "_write_chunks", failing)
    with pytest.raises(StoreError, match="No space left"):
        track(frames, prompts, out, engine=FakeEngine())
    partial = open_result(out)
    assert partial.status == "failed"
    assert partial.frames_done[:7].all() and not partial.frames_done[7]
    monkeypatch.setattr(ResultStore, "_write_chunks", original)
    done = track(frames, prompts, out, engine=FakeEngine(), resume=True)
    np.testing.assert_array_equal(np.asarray(done.labels), truth)


def test_overlaps_follow_the_score_rule_and_masks_can_be_kept(tmp_path, prompts):
    store = ResultStore.create(
        tmp_path / "m.zarr", n_frames=2, frame_shape=(8, 8), prompts=prompts, keep_masks=True
    )
    a = np.zeros((8, 8), bool)
    a[:4] = True
    b = np.zeros((8, 8), bool)
    b[2:6] = True
    with store.writer(queue_size=1) as writer:
        writer.put(FrameResult(0, {1: a, 2: b}, {1: ObjectScore(1.0), 2: ObjectScore(3.0)}))
        writer.put(FrameResult(1, {1: a, 2: b}, {1: ObjectScore(2.0), 2: ObjectScore(2.0)}))
    store.close()
    result = open_result(tmp_path / "m.zarr")
    labels = np.asarray(result.labels)
    assert (labels[0, 2:4] == 2).all()  # higher score wins
    assert (labels[1, 2:4] == 1).all()  # tie: lower id wins
    masks = zarr.open_array(str(tmp_path / "m.zarr" / "sam2v" / "masks"))
    np.testing.assert_array_equal(masks[0, 0], a)
    np.testing.assert_array_equal(masks[0, 1], b)


def test_writer_reports_errors_and_bad_masks(tmp_path, prompts):
    store = ResultStore.create(tmp_path / "e.zarr", n_frames=3, frame_shape=(8, 8), prompts=prompts)
    with pytest.raises(EngineError, match="mask shape"):
        with store.writer() as writer:
            writer.put(FrameResult(0, {1: np.ones((4, 4), bool)}))
            writer.close()
    store.close()
    assert not open_result(tmp_path / "e.zarr").frames_done.any()


def test_cancel_keeps_finished_frames(tmp_path, disk_video, prompts):
    frames, truth = disk_video
    cancel = threading.Event()

    def stop_at_five(info: ProgressInfo) -> None:
        if info.done == 5:
            cancel.set()

    out = tmp_path / "c.zarr"
    result = track(frames, prompts, out, engine=FakeEngine(), progress=stop_at_five, cancel=cancel)
    assert result.status == "cancelled" and result.frames_done.sum() == 5
    result = track(frames, prompts, out, engine=FakeEngine(), resume=True)
    np.testing.assert_array_equal(np.asarray(result.labels), truth)


def test_resume_refuses_other_prompts(tmp_path, disk_video, prompts):
    frames, _ = disk_video
    out = tmp_path / "p.zarr"
    track(frames, prompts, out, engine=FakeEngine())
    other = Prompts(list(prompts.objects), [Prompt(0, 1, points=[[31, 30]])])
    with pytest.raises(StoreError, match="prompts differ"):
        track(frames, other, out, engine=FakeEngine(), resume=True)


def test_output_path_that_cannot_be_created(tmp_path, disk_video, prompts):
    frames, _ = disk_video
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot create the result store"):
        track(frames, prompts, blocker / "r.zarr", engine=FakeEngine())


def test_camera_video_is_referenced_not_copied(tmp_path, prompts, monkeypatch):
    from tests.io.conftest import write_mp4

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    clip = tmp_path / "reef.mp4"
    write_mp4(clip, n_frames=8, shape=(96, 128))
    result = track(
        clip, Prompts([], [Prompt(0, 1, points=[[5, 5]])]), tmp_path / "v.zarr", engine=FakeEngine()
    )
    assert not result.image_copied and not (tmp_path / "v.zarr" / "0").exists()
    source = result.metadata["source"]
    assert source["path"] == str(clip.resolve()) and source["size"] == clip.stat().st_size
    assert len(source["sha256_first_mb"]) == 64 and source["shape"] == [8, 96, 128, 3]
    assert result.video_path == str(clip.resolve())
    assert result.open_image().shape == (8, 96, 128, 3)
    clip.write_bytes(b"\x00" * 100 + clip.read_bytes()[100:])  # a different file now
    assert open_result(tmp_path / "v.zarr").open_image() is None


def test_large_frames_are_tiled(tmp_path, prompts):
    store = ResultStore.create(
        tmp_path / "big.zarr", n_frames=2, frame_shape=(2100, 2500), prompts=prompts
    )
    mask = np.zeros((2100, 2500), bool)
    mask[2000:2100, 2400:] = True
    store.write_frame(FrameResult(1, {1: mask}, {1: ObjectScore(1.0)}))
    store.close()
    result = open_result(tmp_path / "big.zarr")
    assert result.labels_array(writable=False).chunks == (1, 1024, 1024)
    assert result.frames_done.tolist() == [False, True]
    np.testing.assert_array_equal(np.asarray(result.labels[1]), mask.astype(np.uint16))


def test_bad_inputs_never_touch_an_existing_store(tmp_path, disk_video, prompts):
    from napari_sam2v.errors import PromptError, VideoReadError

    frames, truth = disk_video
    out = tmp_path / "keep.zarr"
    track(frames, prompts, out, engine=FakeEngine())
    late = Prompts([], [Prompt(50, 1, points=[[3, 3]])])
    with pytest.raises(PromptError, match="beyond the end"):
        track(frames, late, out, engine=FakeEngine(), overwrite=True)
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 64)
    with pytest.raises(VideoReadError, match="broken.mp4"):
        track(tmp_path / "broken.mp4", prompts, out, engine=FakeEngine(), overwrite=True)
    kept = open_result(out)
    assert kept.complete
    np.testing.assert_array_equal(np.asarray(kept.labels), truth)


def test_given_calibration_is_recorded_for_napari_fiji_and_measurements(
    tmp_path, disk_video, prompts, calibrated
):
    from napari_sam2v.analysis import measure
    from napari_sam2v.errors import InputError
    from napari_sam2v.store.exports import export_tiff

    frames, truth = disk_video
    out = tmp_path / "cal.zarr"
    # A plain array has no metadata; the user's calibration goes into the store.
    result = track(
        frames,
        prompts,
        out,
        engine=FakeEngine(),
        pixel_size=0.8,
        unit="mm",
        frame_interval=0.5,
        time_unit="s",
    )
    assert result.calibration == Calibration(0.8, "mm", 0.5, "s")
    attrs = zarr.open_group(str(out / "labels" / "objects")).attrs
    assert attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"] == [
        0.5,
        0.8,
        0.8,
    ]
    assert attrs["multiscales"][0]["axes"][1]["unit"] == "millimeter"
    table = measure(result).frames
    np.testing.assert_allclose(table["area"], table["area_px"] * 0.64)
    import tifffile

    export_tiff(result, tmp_path / "cal.tif")
    with tifffile.TiffFile(tmp_path / "cal.tif") as tif:
        x_res = tif.pages[0].tags["XResolution"].value
        assert x_res[0] / x_res[1] == pytest.approx(1 / 0.8)
    # Given values override the video's metadata field by field.
    over = track(calibrated, prompts, tmp_path / "over.zarr", engine=FakeEngine(), pixel_size=2.0)
    assert over.calibration == Calibration(2.0, "um", 2.0, "s")
    # Incomplete or invalid calibrations fail before anything is written or replaced.
    for bad, message in (
        ({"pixel_size": 0.5}, "needs a unit"),
        ({"unit": "mm"}, "without a pixel size"),
        ({"frame_interval": 2.0}, "needs a time unit"),
        ({"pixel_size": -1.0, "unit": "mm"}, "positive"),
    ):
        with pytest.raises(InputError, match=message):
            track(frames, prompts, out, engine=FakeEngine(), overwrite=True, **bad)
        kept = open_result(out)
        assert kept.complete and kept.calibration == Calibration(0.8, "mm", 0.5, "s")
        np.testing.assert_array_equal(np.asarray(kept.labels), truth)
    with pytest.raises(InputError, match="needs a unit"):
        track(frames, prompts, tmp_path / "never.zarr", engine=FakeEngine(), pixel_size=0.5)
    assert not (tmp_path / "never.zarr").exists()


def test_resume_keeps_the_recorded_calibration(tmp_path, disk_video, prompts):
    frames, truth = disk_video
    out = tmp_path / "r.zarr"
    stop = threading.Event()

    def cancel_after_three(info: ProgressInfo) -> None:
        if info.done == 3:
            stop.set()

    cal = {"pixel_size": 0.8, "unit": "mm"}
    partial = track(
        frames, prompts, out, engine=FakeEngine(), progress=cancel_after_three, cancel=stop, **cal
    )
    assert not partial.complete
    with pytest.raises(StoreError, match="cannot resume with calibration"):
        track(frames, prompts, out, engine=FakeEngine(), resume=True, pixel_size=0.4, unit="mm")
    # The same calibration, or none, resumes; the store keeps what it recorded.
    done = track(frames, prompts, out, engine=FakeEngine(), resume=True)
    assert done.complete and done.calibration == Calibration(0.8, "mm")
    np.testing.assert_array_equal(np.asarray(done.labels), truth)
