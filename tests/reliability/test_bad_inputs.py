"""Bad inputs get one clear, specific error, never hang, and never damage a store."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from napari_sam2v.errors import Sam2vError
from napari_sam2v.io import open_video
from napari_sam2v.store import open_result
from napari_sam2v.store.pipeline import track
from tests.reliability.corpus import CASES, Case
from tests.reliability.media import (
    corrupt_packet,
    disk_prompts,
    tree_digest,
    write_noise_mp4,
)

EARLY = [case for case in CASES if case.early]


def test_corpus_has_at_least_thirty_kinds():
    assert len({case.id for case in CASES}) == len(CASES) >= 30


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_its_error_and_the_store_beside_it_survives(
    case: Case, tmp_path: Path, workdir: Path, finished_store: Path
):
    before = tree_digest(finished_store)
    call = case.build(tmp_path, workdir)
    with pytest.raises(case.error) as info:
        call()
    assert type(info.value) is case.error, f"{type(info.value).__name__}: {info.value}"
    assert isinstance(info.value, Sam2vError)
    message = str(info.value)
    assert re.search(case.match, message), message
    assert "\n" not in message and "Traceback" not in message
    if case.early:
        assert not (tmp_path / "out.zarr").exists(), "a rejected input left a store behind"
    assert tree_digest(finished_store) == before


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", EARLY, ids=[c.id for c in EARLY])
def test_rejected_input_never_replaces_a_store_even_with_overwrite(
    case: Case, tmp_path: Path, workdir: Path, finished_store: Path
):
    """``overwrite=True`` with a bad input must fail before the old store is removed."""
    before = tree_digest(finished_store)
    call = case.build(tmp_path, workdir)
    with pytest.raises(case.error, match=case.match):
        track(call.video, call.prompts, finished_store, engine="classic", overwrite=True)
    assert tree_digest(finished_store) == before
    assert open_result(finished_store).complete


@pytest.mark.timeout(60)
def test_corrupt_middle_segment_decodes_the_rest_and_reports_the_bad_frame(tmp_path: Path):
    good = tmp_path / "good.mp4"
    write_noise_mp4(good)
    bad = tmp_path / "corrupt.mp4"
    corrupt_packet(good, bad, 15)
    video = open_video(bad)
    assert video.n_frames == 30
    assert video.verify() == [15]
    reference = open_video(good)
    for i in (0, 14, 16, 29):  # both sides of the damage decode (lossy codec: close)
        diff = np.abs(video[i].astype(int) - reference[i].astype(int)).mean()
        assert diff < 8, (i, diff)
    with pytest.raises(Sam2vError, match=r"frame 15 cannot be decoded"):
        video[15]
    assert video[16].shape == (96, 128, 3)  # the reader recovers after the bad frame


@pytest.mark.timeout(60)
def test_tracking_a_corrupt_video_keeps_the_frames_before_the_damage(tmp_path: Path):
    good = tmp_path / "good.mp4"
    write_noise_mp4(good)
    bad = tmp_path / "corrupt.mp4"
    corrupt_packet(good, bad, 15)
    prompts = type(disk_prompts()).from_json_dict(
        {"version": 1, "prompts": [{"frame": 0, "object": 1, "box": [10, 10, 30, 30]}]}
    )
    out = tmp_path / "out.zarr"
    with pytest.raises(Sam2vError, match="frame 15 cannot be decoded"):
        track(bad, prompts, out, engine="classic")
    partial = open_result(out)
    assert partial.status == "failed"
    assert "frame 15" in partial.metadata["state"]["error"]
    assert partial.frames_done[:15].all() and not partial.frames_done[15:].any()


@pytest.mark.timeout(60)
def test_nan_frame_fails_with_the_frame_named_and_earlier_frames_kept(tmp_path, workdir):
    from tests.reliability.corpus import _float_video

    video = _float_video(np.nan, 5)(tmp_path)
    out = tmp_path / "nan.zarr"
    with pytest.raises(Sam2vError, match="frame 5 contains NaN"):
        track(video, workdir / "prompts.json", out, engine="classic")
    partial = open_result(out)
    assert partial.frames_done[:5].all() and not partial.frames_done[5:].any()
    assert partial.status == "failed"


FILE_CASES = [
    case
    for case in CASES
    if case.id
    not in {
        "array-2d",
        "complex-dtype",
        "one-frame-array",
        "float-nan-frame",
        "float-inf-frame",
        "float-all-nan",
        "tiny-frames",
    }
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", FILE_CASES, ids=[c.id for c in FILE_CASES])
def test_cli_reports_bad_files_in_one_line(case: Case, tmp_path: Path, workdir: Path, capsys):
    """``napari-sam2v track`` prints ``error: <message>`` (exit 2), never a traceback."""
    from napari_sam2v.cli.main import main

    call = case.build(tmp_path, workdir)
    video, prompts = call.video, call.prompts
    status = main(
        [
            "track",
            str(video),
            "--prompts",
            str(prompts),
            "--out",
            str(tmp_path / "cli.zarr"),
            "--engine",
            "classic",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert status == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert re.search(case.match, " ".join(lines[0].split())), lines[0]
