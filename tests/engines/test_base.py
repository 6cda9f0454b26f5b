"""Tests for engine-independent helpers of the engine API."""

from __future__ import annotations

import numpy as np
import pytest

from napari_sam2v.engines import Direction, ObjectScore, compose_labels
from napari_sam2v.engines.base import FrameResult, propagation_order
from napari_sam2v.errors import EngineError


def test_overlap_rule_higher_score_wins_then_lower_id() -> None:
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:3, :3] = True
    b[1:, 1:] = True
    labels = compose_labels({1: a, 2: b}, {1: ObjectScore(0.5), 2: ObjectScore(2.0)})
    assert labels[1, 1] == 2 and labels[0, 0] == 1 and labels[3, 3] == 2
    labels = compose_labels({1: a, 2: b}, {1: ObjectScore(3.0), 2: ObjectScore(2.0)})
    assert labels[1, 1] == 1
    tie = compose_labels({2: b, 1: a}, {1: ObjectScore(1.0), 2: ObjectScore(1.0)})
    assert tie[1, 1] == 1
    assert compose_labels({}, shape=(2, 3)).shape == (2, 3)
    with pytest.raises(ValueError, match="shape"):
        compose_labels({})
    result = FrameResult(0, {1: a}, {1: ObjectScore(1.0, 0.9)})
    assert result.labels().dtype == np.uint16 and result.labels().sum() == 9
    assert ObjectScore(0.1).present and not ObjectScore(-0.1).present


def test_propagation_order() -> None:
    fwd = propagation_order(5, 1, Direction.FORWARD)
    assert [f for f, _ in fwd] == [1, 2, 3, 4]
    both = propagation_order(6, 2, Direction.BOTH, (1, 4))
    assert [f for f, _ in both] == [2, 3, 4, 1]
    assert both[-1][1] is Direction.BACKWARD
    with pytest.raises(EngineError, match="outside the frame range"):
        propagation_order(6, 5, Direction.FORWARD, (0, 3))
    with pytest.raises(EngineError, match=r"range 0\.\.9 is not within the video's 0\.\.5"):
        propagation_order(6, 0, Direction.FORWARD, (0, 9))
    with pytest.raises(EngineError, match=r"range 4\.\.1 starts after it ends"):
        propagation_order(6, 2, Direction.FORWARD, (4, 1))
    with pytest.raises(EngineError, match="unknown direction"):
        Direction.parse("sideways")
    assert Direction.parse("both") is Direction.BOTH


def test_frame_result_describe_names_sizes_and_empty_masks() -> None:
    full = np.zeros((8, 8), bool)
    full[:5, :6] = True
    result = FrameResult(3, {2: np.zeros((8, 8), bool), 1: full})
    assert result.describe({1: "fish", 2: "crab"}) == "frame 3: fish 30 px; no mask for crab"
    assert result.describe() == "frame 3: object 1 30 px; no mask for object 2"
    assert FrameResult(0).describe() == "frame 0: no objects"
    big = FrameResult(1, {4: np.ones((40, 40), bool)})
    assert big.describe() == "frame 1: object 4 1,600 px"
    assert result.empty_objects == [2] and big.empty_objects == []
