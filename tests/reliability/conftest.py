"""Fixtures of the reliability suite: a finished store to protect, a private index cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_sam2v.store.pipeline import track
from tests.reliability.media import disk_prompts, write_disk_npy


@pytest.fixture(autouse=True)
def private_index_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the video frame-index cache of every test in its own folder."""
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A module-wide folder holding the input video, prompts and a finished store."""
    root = tmp_path_factory.mktemp("reliability")
    write_disk_npy(root / "video.npy")
    disk_prompts().save(root / "prompts.json")
    return root


@pytest.fixture(scope="module")
def finished_store(workdir: Path) -> Path:
    """A complete store written by the classic engine (the user's precious result)."""
    out = workdir / "finished.zarr"
    result = track(workdir / "video.npy", workdir / "prompts.json", out, engine="classic")
    assert result.complete and result.status == "complete"
    assert np.asarray(result.labels).max() == 2
    return out
