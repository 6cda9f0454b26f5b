"""Helpers for the CLI tests: run ``napari-sam2v`` as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.batch.conftest import write_video

BIN = Path(sys.executable).parent
CLI = str(BIN / "napari-sam2v")

__all__ = ["CLI", "cli", "write_video"]


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", MPLBACKEND="Agg", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def cli(
    *args: object, timeout: float = 180, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run ``napari-sam2v ARGS`` and capture its output."""
    return subprocess.run(
        [CLI, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        cwd=cwd,
    )


@pytest.fixture
def disk_tiff(tmp_path: Path) -> tuple[Path, Path]:
    """A 12-frame TIFF of two moving disks and its prompt file."""
    return write_video(tmp_path, "disks")
