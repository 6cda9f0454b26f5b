"""What ``napari-sam2v track`` prints for truncated TIFFs, (t, c, y, x) arrays and
doubtful prompt files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tifffile

from tests.cli.conftest import cli


def _prompts(path: Path, prompts: list[dict]) -> Path:
    path.write_text(json.dumps({"version": 1, "prompts": prompts}), encoding="utf-8")
    return path


def test_truncated_imagej_tiff_is_one_clear_error(tmp_path: Path) -> None:
    frames = np.zeros((300, 64, 64), np.uint8)
    frames[:, 20:30, 20:30] = 200
    full = tmp_path / "full.tif"
    tifffile.imwrite(full, frames, imagej=True, metadata={"axes": "TYX"})
    data = full.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    prompts = _prompts(tmp_path / "p.json", [{"frame": 0, "object": 1, "points": [[25, 25]]}])
    proc = cli("track", cut, "--prompts", prompts, "--out", tmp_path / "r.zarr", "--engine",
               "classic", "-q")  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr  # no tifffile log lines before it
    assert lines[0].startswith(f"error: {cut} is truncated: its ImageJ header promises 300 frames")
    assert "only 1 frame" not in proc.stderr


def test_tcyx_npy_is_tracked_at_its_frame_size(tmp_path: Path) -> None:
    video = np.zeros((6, 2, 64, 80), np.uint8)
    video[:, 0, 20:30, 20:30] = 200
    path = tmp_path / "tcyx.npy"
    np.save(path, video)
    prompts = _prompts(tmp_path / "p.json", [{"frame": 0, "object": 1, "points": [[25, 25]]}])
    proc = cli("track", path, "--prompts", prompts, "--out", tmp_path / "r.zarr", "--engine",
               "classic", "--channel", 0, "-q")  # fmt: skip
    assert proc.returncode == 0, proc.stderr  # was: point (25, 25) is outside the 64x2 frame
    assert "6/6 frames done" in proc.stdout


def test_prompt_file_warnings_read_as_one_line_each(tmp_path: Path) -> None:
    video = np.zeros((5, 64, 80), np.uint8)
    video[:, 20:30, 20:30] = 200
    path = tmp_path / "v.tif"
    tifffile.imwrite(path, video)
    prompts = _prompts(
        tmp_path / "p.json",
        [
            {"frame": 0, "object": 1, "points": [[25, 25]]},
            {"frame": 0, "object": 3, "points": [[60, 50]], "labels": [0]},
            {"frame": 0, "object": 1, "points": [[22, 22]]},
        ],
    )
    proc = cli("track", path, "--prompts", prompts, "--out", tmp_path / "r.zarr", "--engine",
               "classic", "-q")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        f"warning: {prompts}: prompts[0] and prompts[2] are both for object 1 on frame 0: they "
        "are merged into one prompt with all their clicks; write one entry per object and frame",
        f"warning: {prompts}: object 3 on frame 0 has only background clicks (label 0): it will "
        "be empty on that frame; add a positive click (label 1) or a box",
    ]
