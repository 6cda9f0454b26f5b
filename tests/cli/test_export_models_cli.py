"""``napari-sam2v export`` and ``models`` as real subprocesses."""

from __future__ import annotations

import json
from pathlib import Path
from unittest.mock import ANY

import numpy as np
import pytest
import tifffile

from napari_sam2v.store import open_result
from napari_sam2v.store.pipeline import track
from tests.cli.conftest import cli, write_video


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    video, prompts = write_video(folder, "disks", n_frames=6)
    out = folder / "disks.zarr"
    track(video, prompts, out, engine="classic")
    return out


def test_export_tiff_png_coco(store: Path, tmp_path: Path) -> None:
    labels = np.asarray(open_result(store).labels)

    tiff = tmp_path / "labels.tif"
    proc = cli("export", store, "--to", "tiff", "--out", tiff)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {tiff}" in proc.stdout
    np.testing.assert_array_equal(tifffile.imread(tiff), labels)
    calibrated = tmp_path / "calibrated.tif"
    proc = cli(
        "export", store, "--to", "tiff", "--out", calibrated, "--pixel-size", "0.8", "--unit", "mm"
    )
    assert proc.returncode == 0, proc.stderr
    with tifffile.TiffFile(calibrated) as tif:
        num, den = tif.pages[0].tags["XResolution"].value
        assert den / num == pytest.approx(0.8) and tif.imagej_metadata["unit"] == "mm"

    pngs = tmp_path / "pngs"
    proc = cli("export", store, "--to", "png", "--out", pngs)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote 6 PNG files into {pngs}" in proc.stdout
    assert len(list(pngs.glob("*.png"))) == 6

    per_object = tmp_path / "objects"
    proc = cli("export", store, "--to", "png", "--out", per_object, "--per-object")
    assert proc.returncode == 0, proc.stderr
    assert len(list(per_object.rglob("*.png"))) == 12  # 2 objects x 6 frames

    coco = tmp_path / "coco.json"
    proc = cli("export", store, "--to", "coco", "--out", coco)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(coco.read_text())
    assert len(data["images"]) == 6
    assert sorted(c["id"] for c in data["categories"]) == [1, 2]
    assert len(data["annotations"]) == 12

    # a folder as --out: the file goes inside it, under the Results dock's name
    for target, name in (("tiff", "labels.tif"), ("coco", "coco.json")):
        proc = cli("export", store, "--to", target, "--out", pngs)  # an existing folder
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == f"wrote {pngs / name}"
    np.testing.assert_array_equal(tifffile.imread(pngs / "labels.tif"), labels)
    assert json.loads((pngs / "coco.json").read_text()) == {**data, "info": ANY}
    proc = cli("export", store, "--to", "coco", "--out", f"{tmp_path / 'new'}/")
    assert proc.returncode == 0 and (tmp_path / "new" / "coco.json").is_file(), proc.stderr


def test_export_errors(store: Path, tmp_path: Path) -> None:
    proc = cli("export", tmp_path / "missing.zarr", "--to", "tiff", "--out", tmp_path / "x.tif")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    proc = cli("export", store, "--to", "tiff", "--out", tmp_path / "x.tif", "--per-object")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --per-object applies to --to png only"
    proc = cli("export", store, "--to", "gif", "--out", tmp_path / "x.gif")
    assert proc.returncode == 2 and "invalid choice: 'gif'" in proc.stderr
    proc = cli("export", store, "--to", "png", "--out", tmp_path / "p", "--pixel-size", "2")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: --pixel-size and --frame-interval apply to --to tiff and coco only"
    )
    proc = cli("export", store, "--to", "tiff", "--out", tmp_path / "u.tif", "--pixel-size", "2")
    assert proc.returncode == 2 and "needs a unit" in proc.stderr
    assert not (tmp_path / "p").exists() and not (tmp_path / "u.tif").exists()


def test_models_list_and_path_offline() -> None:
    proc = cli("models", "list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:4] == ["name", "cached", "size", "licence"]
    names = [line.split()[0] for line in lines[2:]]
    assert names[0] == "sam2.1-tiny"
    assert {"sam2.1-large", "edgetam", "random-tiny"} <= set(names)
    random_row = next(line for line in lines if line.startswith("random-tiny"))
    assert "built locally" in random_row and "never for results" in random_row

    proc = cli("models", "path")
    assert proc.returncode == 0 and proc.stdout.strip().endswith("hub")

    proc = cli("models", "path", "random-tiny")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: random-tiny is built locally and has no files on disk"


@pytest.mark.slow
def test_models_download_unknown_name() -> None:
    proc = cli("models", "download", "no-such-model")
    assert proc.returncode == 2
    assert "error: unknown model 'no-such-model'" in proc.stderr
