"""Output folder names survive manifest edits: a row keeps its earlier folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from napari_sam2v.batch import read_manifest
from napari_sam2v.batch.names import NAMES_FILE, keep_earlier_names
from napari_sam2v.errors import StoreError


@pytest.fixture
def survey(tmp_path: Path) -> Path:
    """Two GoPro folders with the same file names, and a prompt file."""
    folder = tmp_path / "survey"
    for name in ("siteA/GX010001.MP4", "siteB/GX010001.MP4", "siteA/GX010002.MP4", "p.json"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(name.encode())
    return folder


def names(folder: Path, out: Path, *rows: str, header: str = "video,prompts") -> list[str]:
    path = folder / "manifest.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    out.mkdir(exist_ok=True)
    return [row.name for row in keep_earlier_names(read_manifest(path), out)]


def test_adding_a_row_of_the_same_file_name_keeps_the_first_folder(survey, tmp_path) -> None:
    out = tmp_path / "out"
    assert names(survey, out, "siteA/GX010001.MP4,p.json") == ["GX010001"]
    # alone, the new row would take parent folders, and so would the first
    assert [r.name for r in read_manifest(survey / "manifest.csv")] == ["GX010001"]
    rows = ("siteA/GX010001.MP4,p.json", "siteB/GX010001.MP4,p.json")
    assert names(survey, out, *rows) == ["GX010001", "siteB_GX010001"]
    # stable on the next run, in any order, and after the row is taken out and put back
    assert names(survey, out, *reversed(rows)) == ["siteB_GX010001", "GX010001"]
    assert names(survey, out, rows[1]) == ["siteB_GX010001"]
    assert names(survey, out, *rows, "siteA/GX010002.MP4,p.json") == [
        "GX010001",
        "siteB_GX010001",
        "GX010002",
    ]
    record = json.loads((out / NAMES_FILE).read_text(encoding="utf-8"))
    assert sorted(record["names"].values()) == ["GX010001", "GX010002", "siteB_GX010001"]
    # keys are relative to the manifest's folder
    assert json.loads(min(record["names"]))[0] == "siteA/GX010001.MP4"


def test_a_name_cell_wins_and_a_clashing_generated_name_takes_a_suffix(survey, tmp_path) -> None:
    out = tmp_path / "out"
    names(survey, out, "siteA/GX010001.MP4,p.json")
    header = "video,prompts,name"
    # another row now names the earlier folder: the earlier row gets a generated name
    rows = ("siteA/GX010001.MP4,p.json,", "siteB/GX010001.MP4,p.json,GX010001")
    got = names(survey, out, *rows, header=header)
    assert got == ["siteA_GX010001", "GX010001"]
    # and a name cell on the row itself wins over its earlier folder
    out2 = tmp_path / "out2"
    names(survey, out2, "siteA/GX010001.MP4,p.json")
    assert names(survey, out2, "siteA/GX010001.MP4,p.json,mine", header=header) == ["mine"]
    # a generated name that is another row's earlier folder is not given twice
    out3 = tmp_path / "out3"
    names(survey, out3, "siteB/GX010001.MP4,p.json,siteA_GX010001", header=header)
    got = names(survey, out3, "siteA/GX010001.MP4,p.json", "siteB/GX010001.MP4,p.json")
    assert got[1] == "siteA_GX010001"
    assert got[0].startswith("siteA_GX010001-") and len(got[0]) == len("siteA_GX010001-") + 8


def test_a_moved_survey_finds_its_folders(survey, tmp_path) -> None:
    out = tmp_path / "out"
    names(survey, out, "siteA/GX010001.MP4,p.json")
    moved = shutil.move(survey, tmp_path / "archive")
    rows = ("siteA/GX010001.MP4,p.json", "siteB/GX010001.MP4,p.json")
    assert names(Path(moved), out, *rows) == ["GX010001", "siteB_GX010001"]


def test_a_folder_from_before_the_record_keeps_its_finished_videos(survey, tmp_path) -> None:
    out = tmp_path / "out"
    (out / "GX010001").mkdir(parents=True)
    video = str((survey / "siteA/GX010001.MP4").resolve())
    (out / "GX010001" / "done.json").write_text(json.dumps({"video": video, "name": "x"}))
    (out / "broken").mkdir()
    (out / "broken" / "done.json").write_text("{not json")
    rows = ("siteA/GX010001.MP4,p.json", "siteB/GX010001.MP4,p.json")
    assert names(survey, out, *rows) == ["GX010001", "siteB_GX010001"]
    assert (out / NAMES_FILE).is_file()


def test_an_unreadable_record_warns_and_is_written_again(survey, tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / NAMES_FILE).write_text('{"names": ["not", "a", "mapping"]}')
    with pytest.warns(UserWarning, match="cannot be read"):
        assert names(survey, out, "siteA/GX010001.MP4,p.json") == ["GX010001"]
    record = json.loads((out / NAMES_FILE).read_text(encoding="utf-8"))
    assert list(record["names"].values()) == ["GX010001"]


def test_an_unwritable_record_is_a_store_error(survey, tmp_path, monkeypatch) -> None:
    from napari_sam2v.batch import names as module

    def full_disk(*args, **kwargs) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, "atomic_write_text", full_disk)
    out = tmp_path / "out"
    with pytest.raises(StoreError, match="cannot write"):
        names(survey, out, "siteA/GX010001.MP4,p.json")
    assert not (out / NAMES_FILE).exists()
