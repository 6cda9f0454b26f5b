"""Builders of damaged and unusual inputs for the reliability tests (no fixtures here)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.prompts import Prompt
from tests.conftest import make_disk_video

#: Size of the standard test video built by :func:`write_disk_npy`.
N_FRAMES = 12
HEIGHT, WIDTH = 96, 128


def disk_prompts() -> Prompts:
    """Clicks on the two disks of :func:`tests.conftest.make_disk_video` (frame 0)."""
    return Prompts([], [Prompt(0, 1, points=[[30, 30]]), Prompt(0, 2, points=[[90, 70]])])


def write_disk_npy(path: Path, n_frames: int = N_FRAMES) -> np.ndarray:
    """Save the two-disk test video as ``.npy`` and return its frames."""
    frames, _ = make_disk_video(n_frames)
    np.save(path, frames)
    return frames


def write_noise_mp4(path: Path, n_frames: int = 30, shape: tuple[int, int] = (96, 128)) -> None:
    """Write an H.264 mp4 of random frames, every frame a keyframe-sized packet."""
    import av

    rng = np.random.default_rng(7)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height = shape[1], shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": "5", "crf": "18", "bf": "0"}
        for _ in range(n_frames):
            img = rng.integers(0, 255, (*shape, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_empty_stream_mp4(path: Path) -> None:
    """Write an mp4 whose muxer started but never got a frame (zero frames)."""
    import av

    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=10)
    stream.width, stream.height = 64, 48
    stream.pix_fmt = "yuv420p"
    container.start_encoding()
    container.close()


def packet_spans(path: Path) -> list[tuple[int, int]]:
    """``(byte offset, size)`` of every video packet, in file order."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [(p.pos, p.size) for p in container.demux(stream) if p.size]


def corrupt_packet(src: Path, dst: Path, index: int) -> None:
    """Copy ``src`` to ``dst`` with packet ``index`` overwritten by zeros."""
    start, size = packet_spans(src)[index]
    data = bytearray(src.read_bytes())
    data[start : start + size] = bytes(size)
    dst.write_bytes(bytes(data))


def tree_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root``, keyed by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
