"""Prompt files: entries for the same object and frame, and background-only prompts."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from napari_sam2v.errors import PromptError
from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.prompts import Prompt


def _load(prompts: list[dict], **kwargs) -> Prompts:
    return Prompts.from_json_dict({"version": 1, "prompts": prompts}, source="p.json", **kwargs)


def test_entries_for_the_same_object_and_frame_are_merged_with_a_warning() -> None:
    entries = [
        {"frame": 0, "object": 1, "points": [[10, 12]]},
        {"frame": 0, "object": 2, "points": [[40, 40]]},
        {"frame": 0, "object": 1, "points": [[20, 22], [10, 12]], "labels": [0, 1]},
        {"frame": 0, "object": 1, "box": [5, 5, 30, 30]},
    ]
    with pytest.warns(UserWarning) as caught:
        prompts = _load(entries)
    messages = [str(w.message) for w in caught]
    assert messages == [
        "p.json: prompts[0], prompts[2] and prompts[3] are all for object 1 on frame 0: they "
        "are merged into one prompt with all their clicks; write one entry per object and frame"
    ]
    assert [(p.frame, p.object_id) for p in prompts] == [(0, 1), (0, 2)]
    merged = prompts.prompts[0]
    np.testing.assert_array_equal(merged.points, [[10, 12], [20, 22]])  # [10, 12] counted once
    np.testing.assert_array_equal(merged.labels, [1, 0])
    np.testing.assert_array_equal(merged.box, [5, 5, 30, 30])
    assert merged.kind == "box+points"


def test_two_entries_warn_with_both_names() -> None:
    entries = [
        {"frame": 3, "object": 1, "points": [[1, 1]]},
        {"frame": 3, "object": 1, "points": [[2, 2]]},
    ]
    with pytest.warns(UserWarning, match=r"prompts\[0\] and prompts\[1\] are both for object 1"):
        prompts = _load(entries)
    assert len(prompts) == 1 and len(prompts.prompts[0].points) == 2


@pytest.mark.parametrize(
    ("second", "why"),
    [
        ({"box": [0, 0, 8, 8]}, "two different boxes"),
        ({"mask": {"size": [4, 4], "counts": [0, 4, 12]}}, "a mask prompt cannot be combined"),
    ],
)
def test_entries_that_cannot_be_merged_are_refused(second: dict, why: str) -> None:
    entries = [
        {"frame": 0, "object": 1, "box": [1, 1, 9, 9]},
        {"frame": 0, "object": 1, **second},
    ]
    with pytest.raises(PromptError, match=rf"p.json: prompts\[0\] and prompts\[1\] .*{why}"):
        _load(entries)


def test_identical_entries_merge_into_one() -> None:
    entry = {"frame": 2, "object": 1, "mask": {"size": [4, 4], "counts": [0, 4, 12]}}
    with pytest.warns(UserWarning, match="merged"):
        prompts = _load([entry, dict(entry)])
    assert len(prompts) == 1 and prompts.prompts[0].kind == "mask"


def test_background_only_prompt_warns_that_the_object_is_empty() -> None:
    entries = [
        {"frame": 0, "object": 1, "points": [[10, 10]]},
        {"frame": 0, "object": 3, "points": [[5, 5], [6, 6]], "labels": [0, 0]},
    ]
    with pytest.warns(UserWarning) as caught:
        _load(entries)
    assert [str(w.message) for w in caught] == [
        "p.json: object 3 on frame 0 has only background clicks (label 0): it will be empty "
        "on that frame; add a positive click (label 1) or a box"
    ]


def test_background_clicks_with_a_box_or_positive_click_do_not_warn() -> None:
    entries = [
        {"frame": 0, "object": 1, "points": [[10, 10], [3, 3]], "labels": [1, 0]},
        {"frame": 0, "object": 2, "points": [[5, 5]], "labels": [0], "box": [0, 0, 9, 9]},
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prompts = _load(entries)
    assert len(prompts) == 2


def test_background_only_clicks_in_a_csv_warn(tmp_path: Path) -> None:
    path = tmp_path / "clicks.csv"
    path.write_text("frame,object,x,y,label\n0,1,4,4,1\n2,5,7,7,0\n", encoding="utf-8")
    with pytest.warns(UserWarning, match=r"clicks.csv: object 5 on frame 2 has only background"):
        prompts = Prompts.load(path)
    assert len(prompts) == 2


def test_saved_prompts_reload_without_warnings(tmp_path: Path) -> None:
    """What napari-sam2v writes has one entry per object and frame."""
    prompts = Prompts(
        prompts=[Prompt(0, 1, points=[[1, 1]]), Prompt(4, 1, box=[0, 0, 5, 5])],
    )
    path = prompts.save(tmp_path / "p.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Prompts.load(path) == prompts
