"""Frames come upright, as a player shows them: video display rotation, EXIF orientation."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from napari_sam2v.io import open_video
from napari_sam2v.io.video import quarter_turns
from tests.io.conftest import write_mp4

_ONE, _W = 0x10000, 0x40000000
#: tkhd display matrices (a, b, u, c, d, v, x, y, w) as phones write them
MATRICES = {
    -90: (0, _ONE, 0, -_ONE, 0, 0, 0, 0, _W),  # portrait (an iPhone held upright)
    180: (-_ONE, 0, 0, 0, -_ONE, 0, 0, 0, _W),  # upside down
    90: (0, -_ONE, 0, _ONE, 0, 0, 0, 0, _W),
}


def with_display_matrix(mp4: Path, out: Path, matrix: tuple[int, ...]) -> Path:
    """A copy of ``mp4`` whose video track carries ``matrix`` (the MP4 ``tkhd`` box)."""
    data = bytearray(mp4.read_bytes())
    box = data.find(b"tkhd")
    assert box > 0
    # version/flags, then 20 (v0) or 32 (v1) bytes of times and ids, 8 reserved,
    # layer, group, volume, reserved: the 36-byte matrix follows
    offset = box + 8 + (32 if data[box + 4] == 1 else 20) + 16
    assert struct.unpack(">9i", data[offset : offset + 36])[0] == _ONE  # identity before
    data[offset : offset + 36] = struct.pack(">9i", *matrix)
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("angle", sorted(MATRICES))
def test_a_rotated_video_is_read_upright(tmp_path, index_cache, angle) -> None:
    plain = tmp_path / "plain.mp4"
    write_mp4(plain, 6)
    rotated = with_display_matrix(plain, tmp_path / f"r{angle}.mp4", MATRICES[angle])
    stored, upright = open_video(plain), open_video(rotated)
    assert upright.metadata.extra["display_rotation"] % 360 == angle % 360
    assert "display_rotation" not in stored.metadata.extra
    turns = {-90: 3, 180: 2, 90: 1}[angle]
    assert upright.shape == (6, *np.rot90(stored[0], turns).shape)
    for index in (0, 5, 2):  # sequential, then a seek back
        np.testing.assert_array_equal(upright[index], np.rot90(stored[index], turns))
        assert upright[index].flags.c_contiguous


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program")
def test_the_rotation_is_the_one_ffmpeg_applies(tmp_path, index_cache) -> None:
    write_mp4(tmp_path / "plain.mp4", 3)
    rotated = with_display_matrix(tmp_path / "plain.mp4", tmp_path / "portrait.mp4", MATRICES[-90])
    raw = tmp_path / "frame.rgb"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(rotated), "-frames:v", "1", "-f", "rawvideo",
         "-pix_fmt", "rgb24", str(raw)],
        check=True,
    )  # fmt: skip
    ours = open_video(rotated)[0]
    theirs = np.frombuffer(raw.read_bytes(), np.uint8).reshape(ours.shape)
    assert np.abs(ours.astype(int) - theirs).mean() < 2  # colour conversion rounding


def test_quarter_turns() -> None:
    assert [quarter_turns(a) for a in (0, -90, 90, 180, -180, 270, 360)] == [0, 3, 1, 2, 2, 3, 0]
    assert quarter_turns(45) == 0 and quarter_turns(-89.5) == 0


@pytest.mark.parametrize(("orientation", "upright"), [(6, lambda a: np.rot90(a, -1)),
                                                      (3, lambda a: np.rot90(a, 2)),
                                                      (2, lambda a: a[:, ::-1])])  # fmt: skip
def test_an_image_folder_with_exif_orientation_is_read_upright(
    tmp_path, orientation, upright
) -> None:
    from PIL import Image

    rng = np.random.default_rng(orientation)
    frames = rng.integers(0, 255, (3, 20, 30, 3), dtype=np.uint8)
    for index, frame in enumerate(frames):
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(frame).save(tmp_path / f"f{index}.png", exif=exif)
    video = open_video(tmp_path)
    assert video.shape == (3, *upright(frames[0]).shape)
    for index in (2, 0):
        np.testing.assert_array_equal(video[index], upright(frames[index]))
