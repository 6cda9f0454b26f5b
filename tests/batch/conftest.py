"""Small videos, prompt files and manifests for the batch tests."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
import tifffile

from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.prompts import Prompt
from tests.conftest import make_disk_video

BIN = Path(sys.executable).parent


def write_video(
    folder: Path, name: str, *, n_frames: int = 12, shape: tuple[int, int] = (96, 128)
) -> tuple[Path, Path]:
    """A TIFF of two moving disks and a prompt file clicking both on frame 0."""
    frames, _ = make_disk_video(
        n_frames,
        shape,
        starts=((30.0, 40.0), (70.0, 90.0)),
        velocity=((0.0, 0.5), (0.0, -0.5)),
    )
    video = folder / f"{name}.tif"
    tifffile.imwrite(video, frames)
    prompts = Prompts(
        prompts=[
            Prompt(frame=0, object_id=1, points=[[40, 30]]),
            Prompt(frame=0, object_id=2, points=[[90, 70]]),
        ]
    )
    path = prompts.save(folder / f"{name}.json")
    return video, path


def write_manifest(folder: Path, rows: list[str], header: str = "video,prompts") -> Path:
    path = folder / "manifest.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def subprocess_env() -> dict[str, str]:
    """Environment for CLI subprocesses: offline, headless, few threads, no colour."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        MPLBACKEND="Agg",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def batch_env() -> dict[str, str]:
    return subprocess_env()
