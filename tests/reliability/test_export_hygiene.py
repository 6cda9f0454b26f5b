"""Object names are free text: exports neutralise formulas and never leave their folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from napari_sam2v.analysis import measure
from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.prompts import Prompt
from napari_sam2v.store import open_result
from napari_sam2v.store.exports import export_coco, export_png, export_tiff
from napari_sam2v.store.pipeline import track
from napari_sam2v.types import ObjectInfo

pytestmark = pytest.mark.timeout(120)

FORMULAS = ['=HYPERLINK("http://x","y")', "+SUM(1,2)", "-2+3", "@cmd", "\tTAB", "\rCR"]
ESCAPES = ["../../etc/x", "a/b", "..", "/etc/passwd", "..\\..\\win", "nul\x00byte", "~/.bashrc"]
NAMES = FORMULAS + ESCAPES
STARTS = [(20 + 24 * (i // 5), 16 + 24 * (i % 5)) for i in range(len(NAMES))]


def _hostile_video() -> np.ndarray:
    """One bright square per object, drifting right by one pixel per frame."""
    frames = np.full((6, 96, 128), 10, np.uint8)
    for t in range(6):
        for y, x in STARTS:
            frames[t, y - 5 : y + 5, x - 5 + t : x + 5 + t] = 220
    return frames


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[Path, Path]:
    """A result whose objects have hostile names, and a sandbox folder holding it."""
    sandbox = tmp_path_factory.mktemp("sandbox")
    objects = [ObjectInfo(i + 1, name) for i, name in enumerate(NAMES)]
    prompts = Prompts(
        objects, [Prompt(0, i + 1, points=[[x, y]]) for i, (y, x) in enumerate(STARTS)]
    )
    out = sandbox / "inner" / "result.zarr"
    result = track(_hostile_video(), prompts, out, engine="classic")
    assert [o.name for o in result.objects] == NAMES
    return sandbox, out


def _all_files(root: Path) -> set[Path]:
    return {p.resolve() for p in root.rglob("*") if p.is_file()}


def _assert_inside(written: list[Path], folder: Path, sandbox: Path, before: set[Path]) -> None:
    for path in written:
        assert path.resolve().is_relative_to(folder.resolve()), path
    new = _all_files(sandbox) - before
    assert new and all(p.is_relative_to(folder.resolve()) for p in new), sorted(new)


def _spreadsheet_safe(cell: str) -> bool:
    """Text a spreadsheet shows as text (numbers such as ``-0.5`` are data, not names)."""
    try:
        float(cell)
    except ValueError:
        return not cell or cell[0] not in "=+-@\t\r"
    return True


def test_csv_and_excel_tables_neutralise_formulas(hostile):
    sandbox, store = hostile
    m = measure(open_result(store))
    names = set(m.frames["name"]) if "name" in m.frames else set()
    assert names == set(NAMES), "the raw names must stay in memory"
    out = sandbox / "inner" / "tables"
    before = _all_files(sandbox)
    written = m.save(out, format="csv") + m.save(out, format="xlsx")
    _assert_inside(written, out, sandbox, before)
    seen = set()
    for path in out.glob("*.csv"):
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    assert _spreadsheet_safe(cell), (path.name, cell)
                    seen.add(cell)
    assert {"'" + n for n in FORMULAS} <= seen
    from openpyxl import load_workbook

    book = load_workbook(out / "measurements.xlsx")
    for sheet in book.worksheets:
        for row in sheet.iter_rows(values_only=True):
            for cell in row:
                if isinstance(cell, str):
                    assert _spreadsheet_safe(cell), (sheet.title, cell)
                assert not (isinstance(cell, str) and cell.startswith("=")), cell
    assert all(c.data_type != "f" for s in book.worksheets for r in s.iter_rows() for c in r)


def test_prompt_csv_neutralises_names(hostile):

    text = open_result(hostile[1]).prompts.to_csv_text()
    for row in csv.reader(text.splitlines()):
        assert all(_spreadsheet_safe(cell) for cell in row), row


def test_per_object_png_folders_stay_inside(hostile):
    sandbox, store = hostile
    out = sandbox / "inner" / "png"
    before = _all_files(sandbox)
    written = export_png(store, out, mode="objects", frames=[0, 5])
    _assert_inside(written, out, sandbox, before)
    folders = {p.parent.name for p in written}
    assert len(folders) == len(NAMES)  # one distinct folder per object, none shared
    assert all(name[:3].isdigit() and "/" not in name and ".." not in name for name in folders)


def test_instance_png_tiff_and_coco_stay_where_asked(hostile):
    sandbox, store = hostile
    out = sandbox / "inner" / "other"
    before = _all_files(sandbox)
    written = export_png(store, out, frames=[0])
    written.append(export_tiff(store, out / "labels.tif"))
    written.append(export_coco(store, out / "coco.json"))
    _assert_inside(written, out, sandbox, before)
    coco = json.loads((out / "coco.json").read_text())
    assert [c["name"] for c in coco["categories"]] == NAMES  # JSON keeps the names verbatim


def test_plots_with_hostile_names_stay_inside(hostile):
    sandbox, store = hostile
    out = sandbox / "inner" / "plots"
    before = _all_files(sandbox)
    written = measure(open_result(store)).save_plots(out, formats=("png",))
    _assert_inside(written, out, sandbox, before)
    assert {p.stem for p in written} >= {"area", "trajectories"}
