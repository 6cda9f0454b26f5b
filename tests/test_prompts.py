"""Tests for the in-memory prompt types."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam2v.errors import PromptError
from napari_sam2v.prompts import Prompt, PromptSet
from napari_sam2v.types import ObjectInfo


def test_point_prompt_normalises_types() -> None:
    p = Prompt(frame=np.int64(2), object_id=1, points=[10, 20])
    assert p.frame == 2 and isinstance(p.frame, int)
    assert p.points.shape == (1, 2)
    assert p.labels.tolist() == [1]
    assert p.kind == "points"


def test_prompt_kinds() -> None:
    assert Prompt(0, 1, box=[0, 0, 5, 5]).kind == "box"
    assert Prompt(0, 1, box=[0, 0, 5, 5], points=[[1, 1]]).kind == "box+points"
    mask = np.zeros((4, 4), bool)
    mask[1, 1] = True
    assert Prompt(0, 1, mask=mask).kind == "mask"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frame": -1, "object_id": 1, "points": [[1, 1]]}, "frame must be >= 0"),
        ({"frame": 1.5, "object_id": 1, "points": [[1, 1]]}, "frame must be an integer"),
        ({"frame": 0, "object_id": 0, "points": [[1, 1]]}, "positive integer"),
        ({"frame": 0, "object_id": True, "points": [[1, 1]]}, "positive integer"),
        ({"frame": 0, "object_id": 1}, "empty prompt"),
        ({"frame": 0, "object_id": 1, "points": [[1, 2, 3]]}, r"\[x, y\] pairs"),
        ({"frame": 0, "object_id": 1, "points": [[np.nan, 2]]}, "NaN"),
        ({"frame": 0, "object_id": 1, "points": [[1, 2]], "labels": [2]}, "0 \\(background\\)"),
        ({"frame": 0, "object_id": 1, "points": [[1, 2]], "labels": [1, 0]}, "1 points but 2"),
        ({"frame": 0, "object_id": 1, "labels": [1], "box": [0, 0, 1, 1]}, "without points"),
        ({"frame": 0, "object_id": 1, "box": [5, 0, 1, 1]}, "x0 < x1"),
        ({"frame": 0, "object_id": 1, "box": [0, 0, 1]}, "four finite"),
        ({"frame": 0, "object_id": 1, "mask": np.zeros((3, 3), bool)}, "mask prompt is empty"),
        ({"frame": 0, "object_id": 1, "mask": np.ones(3, bool)}, "2-D"),
    ],
)
def test_bad_prompts(kwargs: dict, message: str) -> None:
    with pytest.raises(PromptError, match=message):
        Prompt(**kwargs)


def test_check_bounds() -> None:
    p = Prompt(frame=4, object_id=1, points=[[9, 9]])
    p.check_bounds((10, 10), n_frames=5)
    with pytest.raises(PromptError, match="beyond the end"):
        p.check_bounds((10, 10), n_frames=4)
    with pytest.raises(PromptError, match="outside the 9x10 frame"):
        p.check_bounds((10, 9))
    with pytest.raises(PromptError, match="outside"):
        Prompt(frame=0, object_id=1, box=[0, 0, 11, 5]).check_bounds((10, 10))


def test_prompt_set_registers_objects_and_rejects_duplicates() -> None:
    ps = PromptSet(
        [ObjectInfo(1, "fish")],
        [Prompt(0, 1, points=[[1, 1]]), Prompt(3, 2, box=[0, 0, 2, 2])],
    )
    assert ps.object_ids == [1, 2]
    assert ps.object(1).name == "fish"
    assert ps.frames() == [0, 3]
    assert len(ps.for_frame(3)) == 1
    ps.add(Prompt(5, 4, points=[[1, 1]]))
    assert ps.object_ids == [1, 2, 4]
    with pytest.raises(PromptError, match="unknown object id 9"):
        ps.object(9)
    with pytest.raises(PromptError, match="duplicate object ids"):
        PromptSet([ObjectInfo(1), ObjectInfo(1)])
    with pytest.raises(PromptError, match="empty"):
        PromptSet().check_bounds((10, 10), 3)
