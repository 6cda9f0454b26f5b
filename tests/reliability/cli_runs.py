"""Starting, watching and signalling ``napari-sam2v track`` subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from napari_sam2v.cli.main import main
from napari_sam2v.store import open_result

ROOT = Path(__file__).resolve().parents[2]


def track_argv(video: Path, prompts: Path, out: Path, *extra: str) -> list[str]:
    """Arguments of ``napari-sam2v track`` with the classic engine."""
    return [
        "track",
        str(video),
        "--prompts",
        str(prompts),
        "--out",
        str(out),
        "--engine",
        "classic",
        "--quiet",
        *extra,
    ]


def start_paced(argv: list[str], pace_s: float) -> subprocess.Popen[bytes]:
    """Start ``python -m tests.reliability.paced_cli <argv>`` in the repository root."""
    env = {
        **os.environ,
        "SAM2V_TEST_PACE_S": str(pace_s),
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.paced_cli", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def journal_lines(out: Path) -> int:
    """Frames recorded in the store's progress journal so far (0 before it exists)."""
    try:
        return (out / "sam2v" / "progress.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def signal_after(
    child: subprocess.Popen[bytes], out: Path, frames: int, sig: int, *, timeout: float = 60
) -> None:
    """Send ``sig`` once ``frames`` frames are journalled (or at once for 0)."""
    deadline = time.monotonic() + timeout
    while journal_lines(out) < frames:
        if child.poll() is not None:
            _, err = child.communicate()
            raise AssertionError(f"the run ended before frame {frames}: {err.decode()}")
        if time.monotonic() > deadline:
            child.kill()
            raise AssertionError(f"no progress to frame {frames} within {timeout} s")
        time.sleep(0.002)
    child.send_signal(sig)


def run_cli(argv: list[str]) -> int:
    """Run the CLI in this process (as ``napari-sam2v <argv>`` would) and return its status."""
    return main(argv)


def done_frames(out: Path) -> np.ndarray:
    """``frames_done`` of a store, or no frame when the store was never created."""
    if not (out / "sam2v" / "state.json").exists():
        return np.zeros(0, bool)
    return open_result(out).frames_done.copy()
