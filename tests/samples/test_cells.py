"""The real cells sample: shipped crop, reference masks, prompts and the crop script."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from napari_sam2v.errors import InputError, InputFileNotFoundError
from napari_sam2v.samples import load_cells, sample_data_dir
from napari_sam2v.samples.cells import (
    CELLS_ORIGIN,
    CELLS_SIZE,
    crop_cells,
    main,
    relabel_cells,
)

# The Usiigaci T98G source: $NAPARI_SAM2V_T98G_DIR, else ``shared/`` beside the repository.
SOURCE = Path(
    os.environ.get("NAPARI_SAM2V_T98G_DIR")
    or Path(__file__).resolve().parents[3] / "shared" / "data" / "usiigaci_t98g_phase"
)
needs_source = pytest.mark.skipif(not SOURCE.is_dir(), reason="Usiigaci T98G source not here")


def test_sample_shape_calibration_and_caveat() -> None:
    sample = load_cells()
    assert sample.name == "cells"
    assert sample.frames.shape == (37, CELLS_SIZE, CELLS_SIZE)
    assert sample.frames.dtype == np.uint16
    assert sample.labels.shape == sample.frames.shape
    assert sample.calibration.pixel_size == pytest.approx(0.87)
    assert sample.calibration.unit == "um"
    assert sample.calibration.frame_interval == pytest.approx(10.2)
    assert sample.calibration.time_unit == "min"
    assert sample.reference_is_truth is False
    assert "not human ground truth" in sample.attribution
    assert "oist/Usiigaci" in sample.attribution


def test_tiff_metadata_is_imagej_calibrated_and_compressed() -> None:
    for name in ("t98g_phase_crop.tif", "t98g_reference_masks.tif"):
        with tifffile.TiffFile(sample_data_dir() / "cells" / name) as tif:
            assert tif.is_imagej
            meta = tif.imagej_metadata
            assert meta["frames"] == 37
            assert meta["unit"] == "um"
            assert meta["finterval"] == pytest.approx(10.2)
            assert meta["tunit"] == "min"
            page = tif.pages[0]
            assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
            num, den = page.tags["XResolution"].value
            assert den / num == pytest.approx(0.87)


def test_masks_hold_8_to_15_cells_that_stay_inside() -> None:
    labels = load_cells().labels
    ids = [i for i in np.unique(labels) if i > 0]
    assert ids == list(range(1, len(ids) + 1))  # consecutive ids
    # Cells present on (nearly) every frame: the ones the sample is about.
    frames_present = np.array([(labels == i).any(axis=(1, 2)).sum() for i in ids])
    assert 8 <= int((frames_present >= 30).sum()) <= 15


def test_prompts_click_each_prompted_cell_at_its_deepest_point() -> None:
    sample = load_cells()
    data = json.loads(sample.prompts_path.read_text())
    assert data["version"] == 1
    assert 5 <= len(data["prompts"]) <= 10
    assert [o.id for o in sample.objects] == list(range(1, len(data["prompts"]) + 1))
    for prompt, obj in zip(data["prompts"], sample.objects, strict=True):
        assert prompt["frame"] == 0 and prompt["object"] == obj.id and prompt["labels"] == [1]
        (x, y), mask = prompt["points"][0], sample.labels[0] == obj.id
        depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
        assert mask[y, x]
        assert depth[y, x] == depth.max() >= 8


def test_prompts_parse_with_the_prompt_reader() -> None:
    prompt_files = pytest.importorskip("napari_sam2v.io.prompt_files")
    prompts = prompt_files.Prompts.load(load_cells().prompts_path)
    assert [o.name for o in prompts.objects][:2] == ["cell 1", "cell 2"]


def test_licence_and_readme_travel_with_the_crop() -> None:
    folder = sample_data_dir() / "cells"
    assert "MIT License" in (folder / "LICENSE").read_text()
    readme = (folder / "README.md").read_text()
    for needed in ("oist/Usiigaci", "9501d80c", "Okinawa Institute", "not human ground truth"):
        assert needed in readme


@needs_source
def test_crop_script_reproduces_the_shipped_files(tmp_path: Path) -> None:
    assert main(["--source", str(SOURCE), "--out", str(tmp_path)]) == 0
    shipped = sample_data_dir() / "cells"
    for name in ("t98g_phase_crop.tif", "t98g_reference_masks.tif"):
        np.testing.assert_array_equal(
            tifffile.imread(tmp_path / name), tifffile.imread(shipped / name)
        )
    for name in ("cells_prompts.json", "LICENSE"):
        assert (tmp_path / name).read_text() == (shipped / name).read_text()


@needs_source
def test_relabelling_is_one_to_one_with_the_source_ids() -> None:
    source = tifffile.imread(SOURCE / "masks" / "t98g_id_masks_T37.tif")
    r0, c0 = CELLS_ORIGIN
    crop = source[:, r0 : r0 + CELLS_SIZE, c0 : c0 + CELLS_SIZE]
    labels = load_cells().labels
    assert np.array_equal(labels > 0, crop > 0)
    pairs = np.unique(np.stack([crop[crop > 0], labels[crop > 0]]), axis=1)
    assert len(set(pairs[0])) == len(set(pairs[1])) == pairs.shape[1]


def test_relabel_cells_orders_prompted_cells_first() -> None:
    masks = np.zeros((3, 64, 64), np.uint8)
    for k, (r, c) in enumerate([(10, 10), (10, 40), (40, 10), (40, 40), (25, 25)]):
        masks[:, r : r + 12, c : c + 12] = 50 + k  # five whole cells on frame 0
    masks[0, 0:5, 20:30] = 9  # touches the border: never prompted
    masks[2, 55:60, 55:60] = 3  # appears later
    relabelled, prompted = relabel_cells(masks, min_area=100)
    assert prompted == [1, 2, 3, 4, 5]
    assert relabelled[0, 15, 15] == 1 and relabelled[0, 15, 45] == 2
    assert relabelled[0, 2, 25] == 6 and relabelled[2, 57, 57] == 7
    assert np.array_equal(relabelled > 0, masks > 0)


def test_relabel_cells_rejects_bad_masks() -> None:
    with pytest.raises(InputError, match=r"\(t, y, x\)"):
        relabel_cells(np.zeros((64, 64), np.uint8))
    with pytest.raises(InputError, match="only 0 whole cells"):
        relabel_cells(np.zeros((2, 64, 64), np.uint8))


def test_crop_cells_reports_missing_or_bad_input(tmp_path: Path, capsys) -> None:
    with pytest.raises(InputFileNotFoundError, match="does not exist"):
        crop_cells(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "src").mkdir()
    with pytest.raises(InputFileNotFoundError, match="LICENSE"):
        crop_cells(tmp_path / "src", tmp_path / "out")
    (tmp_path / "src" / "LICENSE").write_text("MIT")
    with pytest.raises(InputFileNotFoundError, match="t98g_phase_T37.tif"):
        crop_cells(tmp_path / "src", tmp_path / "out")
    assert main(["--source", str(tmp_path / "src"), "--out", str(tmp_path / "out")]) == 2
    assert "t98g_phase_T37.tif" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_crop_cells_refuses_a_file_as_output_folder(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("keep me")
    with pytest.raises(InputError, match="not a folder"):
        crop_cells(tmp_path, target)
    assert target.read_text() == "keep me"


def test_crop_cells_rejects_a_crop_outside_the_frames(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "masks").mkdir()
    (src / "LICENSE").write_text("MIT")
    tifffile.imwrite(src / "images" / "t98g_phase_T37.tif", np.zeros((2, 40, 40), np.uint16))
    tifffile.imwrite(src / "masks" / "t98g_id_masks_T37.tif", np.zeros((2, 40, 40), np.uint8))
    with pytest.raises(InputError, match="outside frames"):
        crop_cells(src, tmp_path / "out")
    tifffile.imwrite(src / "masks" / "t98g_id_masks_T37.tif", np.zeros((2, 40, 30), np.uint8))
    with pytest.raises(InputError, match="matching"):
        crop_cells(src, tmp_path / "out", origin=(0, 0), size=20)
