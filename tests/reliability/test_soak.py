"""Long run: 2,000 frames with ``random-tiny``; memory must stay flat and the store complete.

Deselected by default; run with ``scripts/test.sh -m soak tests/reliability``. Set
``SAM2V_SOAK_REPORT=path.json`` to write the measured figures.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from benchmarks.bench_engine import rss_mib

from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.prompts import Prompt
from napari_sam2v.store.pipeline import ProgressInfo, track

N_FRAMES = 2000
SIZE = 64
#: Allowed RSS growth between the first 10 % and the end of the run.
MAX_GROWTH_MB = 150.0


def moving_square(n_frames: int, size: int) -> np.ndarray:
    """A bright square that drifts along a circle on a textured background."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 40, (n_frames, size, size), dtype=np.uint8)
    t = np.arange(n_frames)
    cy = (size / 2 + size / 6 * np.sin(t / 50)).astype(int)
    cx = (size / 2 + size / 6 * np.cos(t / 50)).astype(int)
    for i in range(n_frames):
        frames[i, cy[i] - 6 : cy[i] + 6, cx[i] - 6 : cx[i] + 6] = 220
    return frames


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_two_thousand_frames_with_random_tiny(tmp_path):
    import torch

    torch.set_num_threads(2)
    frames = moving_square(N_FRAMES, SIZE)
    y, x = SIZE // 2, SIZE // 2 + SIZE // 6
    prompts = Prompts([], [Prompt(0, 1, points=[[x, y]])])
    samples: list[tuple[int, float, float]] = []
    t0 = time.perf_counter()

    def progress(info: ProgressInfo) -> None:
        if info.done == 1 or info.done % 100 == 0 or info.done == info.total:
            samples.append((info.done, round(time.perf_counter() - t0, 1), round(rss_mib(), 1)))

    start_rss = rss_mib()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the random-weights warning
        result = track(
            frames,
            prompts,
            tmp_path / "soak.zarr",
            engine="sam2",
            model="random-tiny",
            device="cpu",
            progress=progress,
        )
    duration = time.perf_counter() - t0
    assert result.complete and result.status == "complete"
    assert result.frames_done.sum() == N_FRAMES
    assert result.random_weights
    by_frame = {done: rss for done, _, rss in samples}
    early = by_frame[200]
    middle = by_frame[N_FRAMES // 2]
    end = by_frame[N_FRAMES]
    report = {
        "frames": N_FRAMES,
        "frame_size": [SIZE, SIZE],
        "duration_s": round(duration, 1),
        "fps": round(N_FRAMES / duration, 2),
        "rss_mb": {
            "before": round(start_rss, 1),
            "frame_1": samples[0][2],
            "frame_200": early,
            "frame_1000": middle,
            "frame_2000": end,
        },
        "samples": samples,
    }
    target = os.environ.get("SAM2V_SOAK_REPORT")
    if target:
        Path(target).write_text(json.dumps(report, indent=1) + "\n")
    assert end - early < MAX_GROWTH_MB, report
