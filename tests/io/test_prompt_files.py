"""Prompt files: JSON v1 and CSV clicks, validation messages, fuzzing; COCO RLE."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_sam2v.errors import InputFileNotFoundError, PromptError
from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.io.rle import rle_decode, rle_encode
from napari_sam2v.prompts import Prompt, PromptSet
from napari_sam2v.types import ObjectInfo

EXAMPLE = {
    "version": 1,
    "objects": [
        {"id": 1, "name": "parrotfish", "color": "#ff8800"},
        {"id": 2, "name": "diver", "color": "#0072b2"},
    ],
    "prompts": [
        {"frame": 0, "object": 1, "points": [[10, 12], [30.5, 4]], "labels": [1, 0]},
        {"frame": 40, "object": 1, "box": [1, 2, 30, 40]},
        {"frame": 3, "object": 2, "points": [[5, 5]], "labels": [1], "box": [0, 0, 9, 9]},
    ],
}


def test_json_round_trip(tmp_path):
    prompts = Prompts.from_json_dict(EXAMPLE)
    assert prompts.object_ids == [1, 2]
    assert prompts.object(1).name == "parrotfish"
    assert [p.kind for p in prompts] == ["points", "box", "box+points"]
    np.testing.assert_array_equal(prompts.prompts[0].labels, [1, 0])
    assert prompts.to_json_dict() == EXAMPLE
    path = prompts.save(tmp_path / "p.json")
    again = Prompts.load(path)
    assert again == prompts and again.to_json_dict() == EXAMPLE


def test_mask_prompts_are_stored_as_rle(tmp_path):
    mask = np.zeros((6, 7), bool)
    mask[2:4, 1:5] = True
    prompts = Prompts([ObjectInfo(3, "coral")], [Prompt(5, 3, mask=mask)])
    loaded = Prompts.load(prompts.save(tmp_path / "m.json"))
    np.testing.assert_array_equal(loaded.prompts[0].mask, mask)


def test_from_prompt_set_and_missing_objects():
    base = PromptSet([], [Prompt(0, 4, points=[[1, 2]])])
    prompts = Prompts.from_prompt_set(base)
    assert isinstance(prompts, Prompts) and prompts.object_ids == [4]
    data = {"version": 1, "prompts": [{"frame": 2, "object": 7, "points": [[1, 1]]}]}
    assert Prompts.from_json_dict(data).object(7).name == "object 7"


def _bad(**change):
    data = json.loads(json.dumps(EXAMPLE))
    for key, value in change.items():
        if key == "prompt3":
            data["prompts"].append(value)
        else:
            data[key] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "top level must be a JSON object"),
        ({"prompts": []}, "missing or invalid 'version'"),
        (_bad(version=2), "version 2 is not supported"),
        (_bad(version="1"), "invalid 'version'"),
        (_bad(prompts=[]), "prompt list is empty"),
        (_bad(objects=[{"id": 1}, {"id": 1}]), r"objects\[1\]: duplicate object id 1"),
        (_bad(objects=[{"id": 0}]), r"objects\[0\]: id must be a positive integer"),
        (_bad(objects=[{"id": 1, "color": "red"}]), r"objects\[0\].*colour"),
        (
            _bad(prompt3={"frame": 1, "object": 1, "points": [[1, 2]], "labels": [2]}),
            r"prompts\[3\]: labels must be 0 or 1",
        ),
        (
            _bad(prompt3={"frame": 1, "object": 1, "points": [[-1, 2]]}),
            r"prompts\[3\]: points must not have negative",
        ),
        (
            _bad(prompt3={"frame": -1, "object": 1, "points": [[1, 2]]}),
            r"prompts\[3\]: frame must be an integer >= 0",
        ),
        (_bad(prompt3={"frame": 1, "object": 1}), r"prompts\[3\].*empty prompt"),
        (_bad(prompt3={"frame": 1, "object": 1, "box": [5, 5, 1, 1]}), r"prompts\[3\].*x0 < x1"),
        (_bad(prompt3={"frame": 1, "object": 1, "point": [1, 1]}), r"prompts\[3\]: unknown keys"),
        (
            _bad(prompt3={"frame": 1, "object": 1, "points": [[1, 2]], "labels": [1, 1]}),
            r"prompts\[3\]: 1 points but 2 labels",
        ),
        (
            _bad(prompt3={"frame": 1, "object": 1, "mask": {"size": [2, 2], "counts": [1]}}),
            r"prompts\[3\]: mask: RLE counts sum",
        ),
        (_bad(extra=1), "unknown top-level keys"),
    ],
)
def test_invalid_json_names_the_entry(data, message):
    with pytest.raises(PromptError, match=message):
        Prompts.from_json_dict(data)


def test_file_errors(tmp_path):
    with pytest.raises(InputFileNotFoundError, match="missing.json"):
        Prompts.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1, "prompts": [')
    with pytest.raises(PromptError, match="bad.json: malformed JSON"):
        Prompts.load(bad)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000)
    with pytest.raises(PromptError, match="malformed JSON"):
        Prompts.load(deep)


def test_frame_beyond_end_is_checked_against_the_video():
    prompts = Prompts.from_json_dict(EXAMPLE)
    prompts.check_bounds((64, 64), 50)
    with pytest.raises(PromptError, match="frame 40 is beyond the end"):
        prompts.check_bounds((64, 64), 20)


def test_csv_clicks(tmp_path):
    path = tmp_path / "clicks.csv"
    path.write_text(
        "frame,object,x,y,label,name\n0,1,10,12,1,fish\n0,1,30,4,0,fish\n5,2,7.5,8,,diver\n"
    )
    prompts = Prompts.load(path)
    assert [(p.frame, p.object_id, len(p.points)) for p in prompts] == [(0, 1, 2), (5, 2, 1)]
    np.testing.assert_array_equal(prompts.prompts[0].labels, [1, 0])
    assert prompts.object(2).name == "diver"
    out = prompts.save(tmp_path / "again.csv")
    assert Prompts.load(out) == prompts


@pytest.mark.parametrize(
    "text",
    [
        "frame;object;x;y;label;name\r\n0;1;10,5;12;1;fish\r\n0;1;30;4;0;fish\r\n",  # Excel, de/fr
        "\ufeffframe\tobject\tx\ty\tlabel\tname\n0\t1\t10.5\t12\t1\tfish\n0\t1\t30\t4\t0\tfish\n",
    ],
)
def test_csv_from_spreadsheets_in_other_locales(tmp_path, text):
    """';' or tab between values, a decimal comma: what a spreadsheet in many locales writes."""
    path = tmp_path / "clicks.csv"
    path.write_bytes(text.encode("utf-8"))
    (prompt,) = Prompts.load(path).prompts
    np.testing.assert_array_equal(prompt.points, [[10.5, 12.0], [30.0, 4.0]])
    np.testing.assert_array_equal(prompt.labels, [1, 0])
    assert Prompts.load(path).object(1).name == "fish"


def test_csv_saved_by_excel_on_windows(tmp_path):
    """Windows-1252, as Excel saves 'CSV (comma delimited)': names read as written."""
    path = tmp_path / "clicks.csv"
    path.write_bytes(
        "frame;object;x;y;label;name\r\n0;1;10,5;12;1;poisson-clown é\r\n".encode("cp1252")
    )
    assert Prompts.load(path).object(1).name == "poisson-clown é"
    path.write_bytes(b"frame,object,x,y\n0,1,2,3,\x81\n")  # neither UTF-8 nor Windows-1252
    with pytest.raises(PromptError, match="not a UTF-8 or Windows-1252 text file"):
        Prompts.load(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("frame,object,x\n0,1,2\n", "missing"),
        ('frame,object,x,y\n0,1,"2,5",3\n', "line 2: frame/object/label"),  # comma file
        ("frame,object,x,y,label\n0,1,2,3,5\n", "line 2: label must be 0 or 1"),
        ("frame,object,x,y\n0,1,2,3\n1,one,2,3\n", "line 3: frame/object/label"),
        ("frame,object,x,y\n0,1,-2,3\n", "line 2: x and y must be finite"),
        ("frame,object,x,y\n0,1,2,3,4\n", "line 2: more values"),
        ("frame,object,x,y\n", "no clicks"),
    ],
)
def test_invalid_csv_names_the_line(tmp_path, text, message):
    path = tmp_path / "c.csv"
    path.write_text(text)
    with pytest.raises(PromptError, match=message):
        Prompts.load(path)


def test_csv_cannot_hold_boxes_and_neutralises_formulas(tmp_path):
    with pytest.raises(PromptError, match="save as JSON"):
        Prompts.from_json_dict(EXAMPLE).save(tmp_path / "x.csv")
    prompts = Prompts([ObjectInfo(1, "=cmd|' /C calc'!A0")], [Prompt(0, 1, points=[[1, 1]])])
    text = prompts.to_csv_text()
    assert ",'=cmd" in text
    # ... and the guard comes off again on reading, so names survive a round trip.
    (tmp_path / "names.csv").write_text(text)
    assert Prompts.load(tmp_path / "names.csv").objects[0].name == "=cmd|' /C calc'!A0"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 50)
    | st.floats(allow_nan=True)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "version",
                    "objects",
                    "prompts",
                    "frame",
                    "object",
                    "points",
                    "labels",
                    "box",
                    "mask",
                    "id",
                    "name",
                    "color",
                    "size",
                    "counts",
                    "x",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_fuzz_json_parser_only_raises_prompt_errors(data):
    try:
        prompts = Prompts.from_json_dict(data)
    except PromptError:
        return
    assert len(prompts) >= 1


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="frameobjctxyl,0123456789.-\n ", max_size=120))
def test_fuzz_csv_importer_only_raises_prompt_errors(text):
    try:
        prompts = Prompts._from_csv_text(text, "fuzz.csv")
    except PromptError:
        return
    assert len(prompts) >= 1


def test_rle_known_value_and_errors():
    mask = np.array([[0, 1, 1], [0, 1, 0]], bool)
    # column-major: col0 = 0,0; col1 = 1,1; col2 = 1,0 -> runs 2 zeros, 3 ones, 1 zero
    assert rle_encode(mask) == {"size": [2, 3], "counts": [2, 3, 1]}
    assert rle_encode(np.ones((2, 2), bool))["counts"] == [0, 4]
    with pytest.raises(ValueError, match="sum"):
        rle_decode({"size": [2, 2], "counts": [1, 1]})


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_rle_round_trip(height, width, seed):
    mask = np.random.default_rng(seed).random((height, width)) > 0.6
    rle = rle_encode(mask)
    assert sum(rle["counts"]) == height * width
    np.testing.assert_array_equal(rle_decode(rle), mask)


def test_empty_prompt_list_only_when_allowed(tmp_path):
    objects_only = Prompts([ObjectInfo(1, "fish")], [])
    path = objects_only.save(tmp_path / "session.json")
    with pytest.raises(PromptError, match="prompt list is empty"):
        Prompts.load(path)
    loaded = Prompts.load(path, allow_empty=True)
    assert loaded.object_ids == [1] and len(loaded) == 0
