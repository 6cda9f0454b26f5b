"""Manifest parsing and validation: row-numbered errors, path resolution, stable names."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_sam2v.batch import read_manifest, safe_name
from napari_sam2v.errors import InputError, InputFileNotFoundError


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("a.tif", "b.tif", "sub/a.tif", "a.json", "b.csv"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return tmp_path


def write(folder: Path, text: str, name: str = "manifest.csv") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_manifest_resolves_relative_paths(folder: Path) -> None:
    manifest = read_manifest(write(folder, "video,prompts\na.tif,a.json\nb.tif,b.csv\n"))
    assert len(manifest) == 2
    first, second = manifest.rows
    assert first.video == (folder / "a.tif").resolve()
    assert first.prompts == (folder / "a.json").resolve()
    assert (first.row, second.row) == (2, 3)
    assert [r.name for r in manifest] == ["a", "b"]
    assert first.pixel_size is None and first.channel is None and first.model is None


def test_relative_to_manifest_not_cwd(folder: Path, tmp_path_factory, monkeypatch) -> None:
    elsewhere = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(elsewhere)
    manifest = read_manifest(write(folder, "video,prompts\na.tif,a.json\n"))
    assert manifest.rows[0].video.parent == folder.resolve()


def test_optional_columns_are_parsed(folder: Path) -> None:
    text = (
        "video,prompts,channel,pixel_size,unit,frame_interval,time_unit,model,name\n"
        "a.tif,a.json,1,0.65,microns,300,sec,sam2.1-small,well A1\n"
        "b.tif,b.csv,,,,,,,\n"
    )
    first, second = read_manifest(write(folder, text)).rows
    assert first.channel == 1
    assert first.pixel_size == pytest.approx(0.65)
    assert first.unit == "um"  # every spelling of a unit becomes its abbreviation
    assert first.frame_interval == pytest.approx(300.0)
    assert first.time_unit == "s"
    assert first.model == "sam2.1-small"
    assert first.name == "well_A1"
    assert second.channel is None and second.model is None and second.name == "b"


@pytest.mark.parametrize("sep", [";", "\t"])
def test_manifest_from_a_spreadsheet_with_decimal_commas(folder: Path, sep: str) -> None:
    """';' or tabs between values and 0,65 for 0.65, as spreadsheets in many locales write."""
    rows = [
        ["video", "prompts", "pixel_size", "unit", "frame_interval", "time_unit", "name"],
        ["a.tif", "a.json", "0,65", "um", "2,5", "min", "well A1, left"],
        ["b.tif", "b.csv", "", "", "", "", ""],
    ]
    first, second = read_manifest(write(folder, "\r\n".join(sep.join(r) for r in rows))).rows
    assert first.pixel_size == pytest.approx(0.65)
    assert first.frame_interval == pytest.approx(2.5)
    assert first.name == "well_A1_left"  # a comma in text is kept as text
    assert second.pixel_size is None and second.video == (folder / "b.tif").resolve()


def test_duplicate_stems_take_their_folders_not_row_numbers(folder: Path) -> None:
    for name in ("siteB/a.tif", "2024/x/t.tif", "2025/x/t.tif"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")
    rows = ["a.tif,a.json", "sub/a.tif,a.json", "2024/x/t.tif,a.json", "2025/x/t.tif,a.json"]
    manifest = read_manifest(write(folder, "video,prompts\n" + "\n".join(rows) + "\n"))
    names = [r.name for r in manifest]
    assert names == [f"{folder.name}_a", "sub_a", "2024_x_t", "2025_x_t"]
    # Adding a row elsewhere (or one more video of that name) and reordering the
    # rows moves no video's results into another's folder.
    more = ["b.tif,b.csv", rows[3], rows[2], "siteB/a.tif,a.json", rows[1], rows[0]]
    again = read_manifest(write(folder, "video,prompts\n" + "\n".join(more) + "\n"))
    by_video = {r.video: r.name for r in again}
    for row in manifest:
        assert by_video[row.video] == row.name
    assert by_video[(folder / "siteB/a.tif").resolve()] == "siteB_a"


def test_one_video_with_two_prompt_files_or_channels(folder: Path) -> None:
    text = "video,prompts,channel\na.tif,a.json,\na.tif,b.csv,\nb.tif,a.json,0\nb.tif,a.json,1\n"
    assert [r.name for r in read_manifest(write(folder, text))] == ["a-a", "a-b", "b-c0", "b-c1"]


def test_generated_names_avoid_given_names(folder: Path) -> None:
    # A name cell equal to what another row would get: the other row gets another.
    text = "video,prompts,name\na.tif,a.json,\nb.tif,b.csv,a\n"
    first, second = read_manifest(write(folder, text)).rows
    assert second.name == "a" and first.name == f"{folder.name}_a"


def test_two_rows_cannot_share_an_output_folder(folder: Path) -> None:
    text = "video,prompts,name\na.tif,a.json,site 1\nb.tif,b.csv,Site_1\n"
    with pytest.raises(InputError, match=r"row 3: output name 'Site_1' is also row 2's"):
        read_manifest(write(folder, text))


def test_a_repeated_row_is_refused(folder: Path) -> None:
    text = "video,prompts\na.tif,a.json\nb.tif,b.csv\n./a.tif,a.json\n"
    with pytest.raises(InputError, match="row 4 repeats row 2: remove one"):
        read_manifest(write(folder, text))


def test_a_trailing_separator_in_the_header_is_ignored(folder: Path) -> None:
    manifest = read_manifest(write(folder, "video,prompts,\na.tif,a.json,\n"))
    assert [r.name for r in manifest] == ["a"]
    with pytest.raises(InputError, match="header column 2 has no name"):
        read_manifest(write(folder, "video,,prompts\na.tif,,a.json\n"))


def test_blank_lines_keep_file_row_numbers(folder: Path) -> None:
    manifest = read_manifest(write(folder, "video,prompts\n\na.tif,a.json\n\nb.tif,b.csv\n"))
    assert [r.row for r in manifest] == [3, 5]


def test_absolute_paths_and_bom(folder: Path) -> None:
    text = f"\ufeffvideo,prompts\n{folder / 'a.tif'},{folder / 'a.json'}\n"
    manifest = read_manifest(write(folder, text))
    assert manifest.rows[0].video == (folder / "a.tif").resolve()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("video\na.tif\n", "missing required column(s) prompts"),
        ("video,prompts,pixelsize\na.tif,a.json,1\n", "unknown column(s) 'pixelsize'"),
        ("video,prompts,video\na.tif,a.json,b.tif\n", "duplicated column(s) video"),
        ("video,prompts\n", "no video rows"),
        ("video,prompts\nmissing.tif,a.json\n", "row 2: video 'missing.tif' does not exist"),
        ("video,prompts\na.tif,\n", "row 2: column 'prompts' is empty"),
        ("video,prompts,pixel_size\na.tif,a.json,abc\n", "row 2: column 'pixel_size' must be"),
        ("video,prompts,pixel_size\na.tif,a.json,-1\n", "positive finite number, got '-1'"),
        ("video,prompts,frame_interval\na.tif,a.json,nan\n", "column 'frame_interval'"),
        ("video,prompts,channel\na.tif,a.json,1.5\n", "row 2: column 'channel' must be"),
        ("video,prompts,channel\na.tif,a.json,-1\n", "column 'channel' must be an integer >= 0"),
        ("video,prompts,unit\na.tif,a.json,um\n", "'unit' is set but 'pixel_size' is empty"),
        (
            "video,prompts,pixel_size,unit\na.tif,a.json,0.5,umm\n",
            "row 2: column 'unit': 'umm' is not a length unit napari-sam2v knows; use one of nm",
        ),
        (
            "video,prompts,frame_interval,time_unit\na.tif,a.json,2,mm\n",
            "column 'time_unit': 'mm' is not a time unit napari-sam2v knows; use one of ms, s, min",
        ),
        ("video,prompts\na.tif,a.json,extra\n", "row 2: 3 cells but the header has 2"),
    ],
)
def test_invalid_manifests_name_the_problem(folder: Path, text: str, message: str) -> None:
    path = write(folder, text)
    with pytest.raises(InputError) as info:
        read_manifest(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "present", "absent"),
    [
        pytest.param(
            "video,prompts,pixel_size\nnope.tif,a.json,1\na.tif,a.json,0\nb.tif,b.csv,2\n",
            [
                "row 2: video 'nope.tif' does not exist",
                "row 3: column 'pixel_size' must be a positive finite number",
            ],
            ["row 4"],
            id="every row's problems",
        ),
        pytest.param(  # a clash showed up only once the rest was fixed
            "video,prompts,name\na.tif,a.json,x\nb.tif,b.csv,x\nnope.tif,a.json,y\n",
            ["row 4: video 'nope.tif' does not exist", "row 3: output name 'x' is also row 2's"],
            [],
            id="clashing names among them",
        ),
        pytest.param(  # a wrong value was also reported as missing next to its unit
            "video,prompts,pixel_size,unit,frame_interval,time_unit\na.tif,a.json,-2,um,x,s\n",
            [
                "column 'pixel_size' must be a positive finite number, got '-2'",
                "column 'frame_interval' must be a number, got 'x'",
            ],
            ["is empty"],
            id="a wrong value beside its unit is one problem",
        ),
    ],
)
def test_row_problems_are_listed_together(
    folder: Path, text: str, present: list[str], absent: list[str]
) -> None:
    with pytest.raises(InputError) as info:
        read_manifest(write(folder, text))
    message = str(info.value)
    for part in present:
        assert part in message
    for part in absent:
        assert part not in message


def test_many_problems_are_summarised(folder: Path) -> None:
    rows = "".join(f"missing{i}.tif,a.json\n" for i in range(12))
    with pytest.raises(InputError, match="and 4 more"):
        read_manifest(write(folder, "video,prompts\n" + rows))


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(InputFileNotFoundError, match="does not exist"):
        read_manifest(tmp_path / "nope.csv")


def test_not_text(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(b"video,prompts\n\x81\x8d\x8f,\x90\n")  # neither UTF-8 nor cp1252
    with pytest.raises(InputError, match=r"not a readable CSV file \(UTF-8 or Windows-1252"):
        read_manifest(path)


def test_excel_csv_in_windows_1252(folder: Path) -> None:
    """Excel on Windows saves 'CSV (comma delimited)' in Windows-1252: µ is one byte, 0xB5."""
    text = "video;prompts;pixel_size;unit\r\na.tif;a.json;0,87;µm\r\n"
    path = folder / "m.csv"
    path.write_bytes(text.encode("cp1252"))
    (row,) = read_manifest(path).rows
    assert (row.pixel_size, row.unit) == (pytest.approx(0.87), "um")


def test_check_files_can_be_disabled(folder: Path) -> None:
    manifest = read_manifest(
        write(folder, "video,prompts\n/cluster/only/v.mp4,/cluster/only/v.json\n"),
        check_files=False,
    )
    assert manifest.rows[0].video == Path("/cluster/only/v.mp4")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("transect 01", "transect_01"),
        ("../../etc/passwd", "etc_passwd"),
        ("..hidden", "hidden"),
        ("", "video"),
        ("a/b\\c", "a_b_c"),
        ("=cmd|calc", "cmd_calc"),
        ("Récif Moorea", "Récif_Moorea"),
        ("Re\u0301cif", "Récif"),
    ],
)
def test_safe_name(text: str, expected: str) -> None:
    assert safe_name(text) == expected


def test_model_paths_are_relative_to_the_manifest(folder: Path, tmp_path_factory, monkeypatch):
    (folder / "models" / "tiny").mkdir(parents=True)
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    text = "video,prompts,model\na.tif,a.json,models/tiny\nb.tif,b.csv,sam2.1-tiny\n"
    first, second = read_manifest(write(folder, text)).rows
    assert first.model == str((folder / "models" / "tiny").resolve())
    assert second.model == "sam2.1-tiny"
