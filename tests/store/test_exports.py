"""Exports: ImageJ label TIFF, PNG sequences, COCO RLE JSON, and name hygiene."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_sam2v.errors import ExportError, StoreError
from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.io.rle import rle_decode
from napari_sam2v.prompts import Prompt
from napari_sam2v.store.exports import export_coco, export_png, export_tiff, safe_name
from napari_sam2v.store.pipeline import track
from napari_sam2v.types import Calibration, ObjectInfo
from tests.store.fake_engine import FakeEngine

EVIL = '../../escape/=HYPERLINK("x")'


@pytest.fixture
def result(tmp_path, disk_video):
    from napari_sam2v.io import open_video
    from napari_sam2v.io.source import VideoMetadata

    frames, _ = disk_video
    video = open_video(frames)
    video.metadata = VideoMetadata(pixel_size=0.25, unit="um", frame_interval=3.0, time_unit="s")
    prompts = Prompts(
        [ObjectInfo(1, EVIL), ObjectInfo(2, "/abs/path")],
        [Prompt(0, 1, points=[[30, 30]]), Prompt(0, 2, points=[[90, 70]])],
    )
    return track(video, prompts, tmp_path / "r.zarr", engine=FakeEngine(), keep_masks=True)


def test_imagej_tiff(tmp_path, result, disk_video):
    _, truth = disk_video
    path = export_tiff(result, tmp_path / "labels.tif")
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej
        assert tif.series[0].axes == "TYX"
        np.testing.assert_array_equal(tif.asarray(), truth)
        assert tif.imagej_metadata["finterval"] == pytest.approx(3.0)
        assert tif.imagej_metadata["unit"] == "micron"
        num, den = tif.pages[0].tags["XResolution"].value
        assert den / num == pytest.approx(0.25)
    subset = export_tiff(result.path, tmp_path / "two.tif", frames=[2, 5])
    np.testing.assert_array_equal(tifffile.imread(subset), truth[[2, 5]])
    with pytest.raises(StoreError, match="outside the result"):
        export_tiff(result, tmp_path / "bad.tif", frames=[40])
    # A calibration given (say, the one the tables were measured with) replaces the store's.
    corrected = Calibration(2.0, "mm", 0.5, "min")
    with tifffile.TiffFile(export_tiff(result, tmp_path / "c.tif", calibration=corrected)) as tif:
        num, den = tif.pages[0].tags["XResolution"].value
        assert den / num == pytest.approx(2.0)
        assert tif.imagej_metadata["unit"] == "mm"
        assert tif.imagej_metadata["finterval"] == pytest.approx(0.5)
        assert tif.imagej_metadata["tunit"] == "min"


def test_png_instance_and_per_object(tmp_path, result, disk_video):
    _, truth = disk_video
    files = export_png(result, tmp_path / "inst", frames=[0, 3])
    assert [f.name for f in files] == ["frame_000000.png", "frame_000003.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(files[1])), truth[3])
    files = export_png(result, tmp_path / "objs", mode="objects")
    assert len(files) == 24
    for path in files:  # free-text names never escape the output folder
        assert path.resolve().is_relative_to((tmp_path / "objs").resolve())
    folders = sorted(p.name for p in (tmp_path / "objs").iterdir())
    assert folders == ["001_escape_HYPERLINK_x", "002_abs_path"]
    mask = np.asarray(Image.open(tmp_path / "objs" / folders[1] / "frame_000004.png"))
    np.testing.assert_array_equal(mask > 0, truth[4] == 2)
    with pytest.raises(StoreError, match="unknown PNG export mode"):
        export_png(result, tmp_path / "x", mode="rainbow")


def test_coco_rle(tmp_path, result, disk_video):
    _, truth = disk_video
    path = export_coco(result, tmp_path / "coco.json")
    data = json.loads(path.read_text())
    assert len(data["images"]) == 12 and data["images"][0]["file_name"] == "frame_000000.png"
    assert data["categories"][0] == {"id": 1, "name": EVIL, "supercategory": "object"}
    assert len(data["annotations"]) == 24
    for ann in data["annotations"]:
        t = ann["image_id"] - 1
        mask = rle_decode(ann["segmentation"])
        np.testing.assert_array_equal(mask, truth[t] == ann["category_id"])
        assert ann["area"] == int(mask.sum())
        x, y, w, h = ann["bbox"]
        assert mask[y : y + h, x : x + w].sum() == ann["area"]
        assert ann["segmentation"]["size"] == [96, 128]
    assert data["info"]["calibration"]["pixel_size"] == 0.25
    corrected = Calibration(2.0, "mm")
    again = json.loads(export_coco(result, tmp_path / "c.json", calibration=corrected).read_text())
    assert again["info"]["calibration"] == corrected.to_dict()


def test_coco_score_is_the_tables_probability(tmp_path, result):
    """COCO results hold a confidence in [0, 1]: the frames table's ``score``, not a logit."""
    from napari_sam2v.analysis import measure

    data = json.loads(export_coco(result, tmp_path / "coco.json").read_text())
    frames = measure(result, shape_features=False).frames.set_index(["frame", "object_id"])
    logits = {
        (int(r.frame), int(r.object_id)): r.object_score_logit for r in result.scores.itertuples()
    }
    assert data["annotations"]
    for ann in data["annotations"]:
        key = (ann["image_id"] - 1, ann["category_id"])
        assert 0.0 <= ann["score"] <= 1.0
        assert ann["score"] == pytest.approx(frames.loc[key, "score"])
        assert ann["score_logit"] == pytest.approx(logits[key])
        assert ann["score"] == pytest.approx(1.0 / (1.0 + np.exp(-ann["score_logit"])))


def test_coco_has_ids_painted_by_hand(tmp_path, disk_video):
    """An id painted in napari that is no object is exported, named as the tables name it."""
    from napari_sam2v.analysis import measure
    from napari_sam2v.store import open_result

    frames, _ = disk_video
    prompts = Prompts([ObjectInfo(1, "cell")], [Prompt(0, 1, points=[[30, 30]])])
    result = track(frames, prompts, tmp_path / "p.zarr", engine=FakeEngine())
    result.labels_array(writable=True)[3, 2:6, 2:9] = 9
    data = json.loads(export_coco(result, tmp_path / "coco.json").read_text())
    assert data["categories"] == [
        {"id": 1, "name": "cell", "supercategory": "object"},
        {"id": 9, "name": "object 9", "supercategory": "object"},
    ]
    (painted,) = [a for a in data["annotations"] if a["category_id"] == 9]
    assert (
        painted["image_id"] == 4
        and painted["area"] == 28 == rle_decode(painted["segmentation"]).sum()
    )
    names = measure(open_result(tmp_path / "p.zarr")).frames.set_index("object_id")["name"]
    assert names.loc[9] == "object 9"


def test_kept_masks_keep_overlaps_and_take_later_edits(tmp_path):
    """keep_masks: an overlap reaches both objects' exports, and so does paint done since."""
    from napari_sam2v.engines.base import FrameResult, ObjectScore
    from napari_sam2v.store import ResultStore, open_result

    prompts = Prompts(
        [ObjectInfo(1, "coral"), ObjectInfo(2, "fish")],
        [Prompt(0, 1, points=[[1, 1]]), Prompt(0, 2, points=[[6, 6]])],
    )
    store = ResultStore.create(
        tmp_path / "k.zarr", n_frames=1, frame_shape=(8, 8), prompts=prompts, keep_masks=True
    )
    coral, fish = np.zeros((8, 8), bool), np.zeros((8, 8), bool)
    coral[:5], fish[3:] = True, True  # rows 3-4 are both: the fish wins the labels
    with store.writer(queue_size=1) as writer:
        writer.put(FrameResult(0, {1: coral, 2: fish}, {1: ObjectScore(1.0), 2: ObjectScore(3.0)}))
    store.close()
    labels = open_result(tmp_path / "k.zarr").labels_array(writable=True)
    edited = np.asarray(labels[0])
    edited[0, :4] = 0  # erased from the coral
    edited[7, :2] = 1  # painted onto the coral (was the fish's only)
    edited[6, 6:] = 9  # an id painted by hand that is no object
    labels[0] = edited
    expected = {1: coral.copy(), 2: fish.copy(), 9: edited == 9}
    expected[1][0, :4] = False
    expected[1][7, :2] = True
    expected[2][7, :2] = expected[2][6, 6:] = False

    export_png(tmp_path / "k.zarr", tmp_path / "png", mode="objects")
    for oid, folder in ((1, "001_coral"), (2, "002_fish")):
        png = np.asarray(Image.open(tmp_path / "png" / folder / "frame_000000.png")) > 0
        np.testing.assert_array_equal(png, expected[oid])
    data = json.loads(export_coco(tmp_path / "k.zarr", tmp_path / "k.json").read_text())
    found = {a["category_id"]: rle_decode(a["segmentation"]) for a in data["annotations"]}
    assert sorted(found) == [1, 2, 9]
    for oid, mask in found.items():
        np.testing.assert_array_equal(mask, expected[oid])
    assert (found[1] & found[2])[3:5].all()  # the overlap is in both


def test_safe_name():
    assert safe_name("..") == "object"
    assert safe_name("a/b\\c") == "a_b_c"
    assert safe_name("x" * 200) == "x" * 48
    assert "/" not in safe_name(EVIL) and not safe_name(EVIL).startswith(".")


def test_png_instance_maps_are_16_bit_and_replace_an_earlier_export(tmp_path, result, disk_video):
    _, truth = disk_video
    folder = tmp_path / "inst"
    export_png(result, folder)
    mine = folder / "notes.txt"
    mine.write_text("kept")
    files = export_png(result, folder, frames=[1, 2])
    # Every frame has one bit depth, whatever its ids, and the folder holds this export.
    assert sorted(p.name for p in folder.glob("frame_*.png")) == [f.name for f in files]
    for t, path in zip([1, 2], files, strict=True):
        with Image.open(path) as img:
            assert img.mode == "I;16"
            np.testing.assert_array_equal(np.asarray(img), truth[t])
    assert mine.read_text() == "kept"


def test_png_export_never_replaces_frames_it_did_not_write(tmp_path, result):
    """A folder of frames extracted from a video (ffmpeg's frame_%06d.png) is left alone."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(48):
        (folder / f"frame_{t:06d}.png").write_bytes(b"a frame of the user's")
    for mode in ("instance", "objects"):
        target = folder if mode == "instance" else folder / "001_escape_HYPERLINK_x"
        target.mkdir(exist_ok=True)
        (target / "frame_000000.png").write_bytes(b"a frame of the user's")
        with pytest.raises(
            ExportError,
            match="48 frame PNGs that no napari-sam2v export wrote"
            if mode == "instance"
            else "1 frame PNGs that no napari-sam2v",
        ):
            export_png(result, folder, mode=mode)
    assert len(list(folder.glob("frame_*.png"))) == 48
    assert {p.read_bytes() for p in folder.glob("frame_*.png")} == {b"a frame of the user's"}


def test_per_object_png_includes_ids_painted_by_hand(tmp_path, result, disk_video):
    """An id painted into the labels gets its folder, blank before it shows (as in COCO)."""
    _, truth = disk_video
    labels = result.labels_array(writable=True)
    frame = np.asarray(labels[5])
    frame[:4, :4] = 7
    labels[5] = frame
    files = export_png(result, tmp_path / "objs", mode="objects")
    painted = tmp_path / "objs" / "007_object_7"
    assert sorted(p.name for p in painted.glob("*.png")) == [
        f"frame_{t:06d}.png" for t in range(12)
    ]
    assert len(files) == 36
    np.testing.assert_array_equal(
        np.asarray(Image.open(painted / "frame_000005.png")) > 0, frame == 7
    )
    assert not np.asarray(Image.open(painted / "frame_000002.png")).any()


def test_tiff_interval_of_a_frame_subset(tmp_path, result):
    every_third = export_tiff(result, tmp_path / "third.tif", frames=[0, 3, 6, 9])
    with tifffile.TiffFile(every_third) as tif:
        assert tif.imagej_metadata["finterval"] == pytest.approx(9.0)
    uneven = export_tiff(result, tmp_path / "uneven.tif", frames=[0, 1, 5])
    with tifffile.TiffFile(uneven) as tif:
        assert "finterval" not in tif.imagej_metadata
        assert tif.imagej_metadata["Labels"] == ["frame 0", "frame 1", "frame 5"]


@pytest.mark.parametrize(
    ("pixel_size", "unit", "written", "tiff_unit"),
    [
        (1e-10, "m", 0.1, "nm"),  # 1 angstrom: 1e10 px/m does not fit the ratio
        (2e-4, "nm", 2e-4, "nm"),  # small, but ImageJ has no smaller unit: kept
        (5e3, "m", 5e3, "m"),  # a satellite pixel stays in metres
        (5e11, "nm", 500.0, "m"),  # 500 m given in nm
    ],
)
def test_tiff_resolution_is_written_in_a_unit_that_holds_it(
    tmp_path, result, pixel_size, unit, written, tiff_unit
):
    cal = Calibration(pixel_size, unit)
    with tifffile.TiffFile(export_tiff(result, tmp_path / "l.tif", calibration=cal)) as tif:
        num, den = tif.pages[0].tags["XResolution"].value
        assert den / num == pytest.approx(written, rel=1e-6)
        assert tif.imagej_metadata["unit"] == tiff_unit


def test_a_pixel_size_no_resolution_tag_holds_is_one_clear_error(tmp_path, result):
    with pytest.raises(ExportError, match="1e-300 um does not fit a TIFF's resolution tags"):
        export_tiff(result, tmp_path / "l.tif", calibration=Calibration(1e-300, "um"))
    assert not list(tmp_path.glob("*l.tif*"))


def test_exporting_frames_a_partial_store_never_tracked_warns(tmp_path, disk_video):
    frames, truth = disk_video
    prompts = Prompts([], [Prompt(0, 1, points=[[30, 30]])])
    part = track(frames, prompts, tmp_path / "p.zarr", engine=FakeEngine(), end=5)
    assert part.status == "partial"
    last = len(frames) - 1
    never = rf"p\.zarr is not complete \(partial\): frames 6-{last} were never tracked"
    with pytest.warns(UserWarning, match=never):
        tif = export_tiff(part, tmp_path / "p.tif")
    assert not tifffile.imread(tif)[6:].any()
    with pytest.warns(UserWarning, match=r"frames 7, 9 were never tracked"):
        export_png(part, tmp_path / "png", frames=[0, 7, 9])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        export_tiff(part, tmp_path / "tracked.tif", frames=[0, 1, 5])  # all tracked: no note


def test_ids_a_format_cannot_hold_are_refused(tmp_path, disk_video):
    frames, truth = disk_video
    prompts = Prompts(
        [ObjectInfo(70_000, "a"), ObjectInfo(2**24 + 1, "b")],
        [Prompt(0, 70_000, points=[[30, 30]]), Prompt(0, 2**24 + 1, points=[[90, 70]])],
    )
    big = track(frames, prompts, tmp_path / "big.zarr", engine=FakeEngine())
    with pytest.raises(StoreError, match="above 65535 do not fit a 16-bit PNG"):
        export_png(big, tmp_path / "png")
    assert not (tmp_path / "png").exists()
    with pytest.raises(StoreError, match=r"\[16777217\] are above 2\*\*24"):
        export_tiff(big, tmp_path / "big.tif")
    assert not list(tmp_path.glob("*big.tif*"))
    # COCO and per-object masks keep every id.
    coco = json.loads(export_coco(big, tmp_path / "c.json").read_text())
    assert {c["id"] for c in coco["categories"]} == {70_000, 2**24 + 1}
    files = export_png(big, tmp_path / "objs", mode="objects", frames=[0])
    assert len(files) == 2


def test_an_output_folder_that_cannot_be_made_is_a_clear_error(tmp_path, result):
    from napari_sam2v.errors import ExportError

    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    calls = {
        "tiff": lambda: export_tiff(result, blocker / "sub" / "labels.tif"),
        "png": lambda: export_png(result, blocker / "sub"),
        "coco": lambda: export_coco(result, blocker / "sub" / "coco.json"),
    }
    for kind, call in calls.items():
        with pytest.raises(ExportError, match=r"afile/sub: cannot create the output folder"):
            call()
        assert blocker.read_text() == "not a folder", kind


def test_tiff_into_a_read_only_folder_is_one_clear_error(tmp_path, result, monkeypatch):
    """The clean-up of the partial file fails there too: the export's error still shows."""
    import errno
    import pathlib

    def refuse(*_args, **_kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    real_unlink = pathlib.Path.unlink

    def unlink(self, missing_ok=False):
        if ".partial-" in self.name:
            refuse()
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(tifffile, "imwrite", refuse)
    monkeypatch.setattr(pathlib.Path, "unlink", unlink)
    with pytest.raises(StoreError, match=r"l\.tif: cannot write the TIFF \(\[Errno 30\]"):
        export_tiff(result, tmp_path / "l.tif")


def test_nothing_is_exported_into_the_store(result):
    """An export into the store (its folder, its labels group) is refused."""
    inside = (
        lambda: export_tiff(result, result.path),
        lambda: export_png(result, result.path / "labels"),
        lambda: export_coco(result, result.path / "labels" / "coco.json"),
    )
    for export in inside:
        with pytest.raises(ExportError, match="is inside the result store"):
            export()
    assert not (result.path / "labels.tif").exists()
    assert not list((result.path / "labels").glob("*.png"))
