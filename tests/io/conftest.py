"""Small generated inputs for the reader tests (mp4, TIFF, PNG folders, zarr)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest


def write_mp4(
    path: Path,
    n_frames: int = 24,
    shape: tuple[int, int] = (48, 64),
    *,
    gop: int = 6,
    pts_step: list[int] | None = None,
) -> np.ndarray:
    """Write an H.264 mp4 whose frame ``i`` has brightness ``8 * i`` in its top-left
    corner (so frame identity survives lossy coding); return the frames written."""
    import av

    frames = np.zeros((n_frames, *shape, 3), np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height = shape[1], shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": str(gop), "crf": "10", "bf": "2"}
        if pts_step is not None:
            stream.codec_context.time_base = __import__("fractions").Fraction(1, 1000)
        pts = 0
        for i in range(n_frames):
            img = frames[i]
            img[:16, :16] = 8 * i
            img[20:30, (2 * i) % (shape[1] - 10) :][:, :10] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            if pts_step is not None:
                frame.pts = pts
                frame.time_base = stream.codec_context.time_base
                pts += pts_step[i % len(pts_step)]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return frames


def assert_channels_last(video: Any, tcyx: np.ndarray) -> None:
    """``video`` reads the ``(t, c, y, x)`` array ``tcyx`` as ``(t, y, x, c)`` frames."""
    t, c, y, x = tcyx.shape
    assert video.shape == (t, y, x, c)
    for index in range(t):
        np.testing.assert_array_equal(video[index], np.moveaxis(tcyx[index], 0, -1))


def corner_index(frame: np.ndarray) -> int:
    """Recover the frame number written by :func:`write_mp4`."""
    return int(round(float(frame[4:12, 4:12].mean()) / 8))


@pytest.fixture
def index_cache(tmp_path, monkeypatch) -> Path:
    """Point the video index cache at a fresh folder."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache / "napari-sam2v" / "video-index"


@pytest.fixture
def mp4(tmp_path, index_cache) -> Path:
    path = tmp_path / "clip.mp4"
    write_mp4(path)
    return path
