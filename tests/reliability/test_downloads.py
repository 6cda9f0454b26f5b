"""Downloaded weights are checked against the hub's SHA-256; interrupted downloads are
never taken for complete weights. No network: the hub calls are replaced by fakes."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("huggingface_hub")

from napari_sam2v.engines.sam2 import registry
from napari_sam2v.engines.sam2.integrity import verify_weights
from napari_sam2v.errors import CheckpointError, WeightsNotFoundError

pytestmark = pytest.mark.timeout(60)

NAME = "sam2.1-tiny"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
WEIGHTS = os.urandom(1 << 16)


@dataclass
class _Lfs:
    sha256: str


@dataclass
class _RepoFile:
    path: str
    lfs: _Lfs | None


def _fake_cache(root: Path, *, weights: bytes | None, blob_bytes: bytes | None = None) -> Path:
    """A Hugging Face cache holding the model's snapshot, as huggingface_hub lays it out.

    ``weights`` is what the hub published; ``blob_bytes`` what ended up on disk
    (default: the same). ``weights=None``: the weights download never finished.
    """
    hub_id = registry.get_model(NAME).hub_id
    repo = root / f"models--{hub_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    blobs, snapshot = repo / "blobs", repo / "snapshots" / COMMIT
    blobs.mkdir()
    snapshot.mkdir(parents=True)
    config = json.dumps({"model_type": "sam2_video"}).encode()
    config_blob = blobs / hashlib.sha1(b"blob %d\0" % len(config) + config).hexdigest()
    config_blob.write_bytes(config)
    (snapshot / "config.json").symlink_to(os.path.relpath(config_blob, snapshot))
    if weights is None:  # interrupted: only the .incomplete blob exists
        sha = hashlib.sha256(WEIGHTS).hexdigest()
        (blobs / f"{sha}.incomplete").write_bytes(WEIGHTS[: len(WEIGHTS) // 3])
        return snapshot
    sha = hashlib.sha256(weights).hexdigest()
    blob = blobs / sha
    blob.write_bytes(weights if blob_bytes is None else blob_bytes)
    (snapshot / "model.safetensors").symlink_to(os.path.relpath(blob, snapshot))
    return snapshot


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """Point huggingface_hub at an empty cache; any real network call fails the test."""
    from huggingface_hub import constants

    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def _online_with_metadata(monkeypatch, published: dict[str, str], snapshot: Path) -> list:
    """Pretend the hub is reachable: snapshot_download returns the cached snapshot and
    ``get_paths_info`` returns ``published`` (file -> sha256)."""
    import huggingface_hub
    from huggingface_hub import HfApi

    calls: list = []
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: str(snapshot))

    def paths_info(self, repo_id, paths, *, revision=None, **kwargs):
        calls.append((repo_id, list(paths), revision))
        return [_RepoFile(p, _Lfs(published[p]) if p in published else None) for p in paths]

    monkeypatch.setattr(HfApi, "get_paths_info", paths_info)
    return calls


def test_weights_matching_the_hub_hash_are_accepted(hub_cache, monkeypatch):
    snapshot = _fake_cache(hub_cache, weights=WEIGHTS)
    published = {"model.safetensors": hashlib.sha256(WEIGHTS).hexdigest()}
    calls = _online_with_metadata(monkeypatch, published, snapshot)
    assert registry.download_model(NAME, progress=False) == snapshot
    hub_id = registry.get_model(NAME).hub_id
    assert calls == [(hub_id, ["model.safetensors"], COMMIT)]


def test_weights_not_matching_the_hub_hash_are_refused(hub_cache, monkeypatch):
    """The cached file is internally consistent but differs from what the hub publishes."""
    snapshot = _fake_cache(hub_cache, weights=WEIGHTS)
    published = {"model.safetensors": hashlib.sha256(b"the real weights").hexdigest()}
    _online_with_metadata(monkeypatch, published, snapshot)
    with pytest.raises(CheckpointError) as info:
        registry.download_model(NAME, progress=False)
    message = str(info.value)
    assert message.startswith(
        f"{snapshot / 'model.safetensors'}: the downloaded weights are damaged"
    )
    assert "download the model again" in message


def test_damaged_blob_is_caught_offline_by_its_content_address(hub_cache):
    """Offline, a blob whose bytes no longer match its SHA-256 name is refused."""
    damaged = bytearray(WEIGHTS)
    damaged[100:200] = bytes(100)
    _fake_cache(hub_cache, weights=WEIGHTS, blob_bytes=bytes(damaged))
    with pytest.raises(CheckpointError, match="the downloaded weights are damaged"):
        registry.download_model(NAME, progress=False)
    truncated = hub_cache.parent / "other"
    snapshot = _fake_cache(truncated, weights=WEIGHTS, blob_bytes=WEIGHTS[:1000])
    with pytest.raises(CheckpointError, match="damaged"):
        verify_weights(snapshot)


def test_interrupted_download_is_never_taken_for_weights(hub_cache):
    """Only ``<sha>.incomplete`` exists: the model is not cached, and loading says so."""
    _fake_cache(hub_cache, weights=None)
    assert not registry.is_cached(NAME)
    with pytest.raises(WeightsNotFoundError, match="download is incomplete|not in the Hugging"):
        registry.download_model(NAME, progress=False)
    incomplete = list(hub_cache.rglob("*.incomplete"))
    assert len(incomplete) == 1  # our code neither deletes nor promotes the partial file
    assert not any(p.name == "model.safetensors" for p in hub_cache.rglob("*"))


def test_unreachable_hub_falls_back_to_the_content_address(hub_cache, monkeypatch):
    import huggingface_hub
    from huggingface_hub import HfApi

    snapshot = _fake_cache(hub_cache, weights=WEIGHTS)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: str(snapshot))

    def unreachable(self, *args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(HfApi, "get_paths_info", unreachable)
    assert registry.download_model(NAME, progress=False) == snapshot


def test_download_progress_reaches_the_callback(hub_cache, monkeypatch):
    import huggingface_hub

    snapshot = _fake_cache(hub_cache, weights=WEIGHTS)
    published = {"model.safetensors": hashlib.sha256(WEIGHTS).hexdigest()}
    _online_with_metadata(monkeypatch, published, snapshot)
    half = len(WEIGHTS) // 2

    def fake_snapshot_download(*_args, tqdm_class, **_kwargs):
        # what huggingface_hub does: byte bars and a file-count bar of the given class
        with tqdm_class(total=len(WEIGHTS), unit="B") as data:
            data.update(half)
            data.update(len(WEIGHTS) - half)
        with tqdm_class(total=2, unit="it") as files:
            files.update(2)
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    seen: list[tuple[int, int]] = []
    folder = registry.download_model(NAME, progress=False, on_progress=lambda *a: seen.append(a))
    assert folder == snapshot
    assert seen == [(half, len(WEIGHTS)), (len(WEIGHTS), len(WEIGHTS))]
