"""Model registry, model resolution and fetch failures of the SAM 2 engine."""

from __future__ import annotations

import huggingface_hub.constants
import pytest

from napari_sam2v.engines import create_engine
from napari_sam2v.engines.sam2 import (
    DEFAULT_MODEL,
    RANDOM_TINY,
    Sam2Engine,
    download_model,
    is_cached,
    list_models,
    resolve_model,
)
from napari_sam2v.engines.sam2.runtime import select_device
from napari_sam2v.errors import (
    EngineError,
    InputFileNotFoundError,
    ModelError,
    Sam2vError,
    WeightsNotFoundError,
)

EXPECTED = {
    "sam2.1-tiny",
    "sam2.1-small",
    "sam2.1-base-plus",
    "sam2.1-large",
    "sam2-tiny",
    "sam2-small",
    "sam2-base-plus",
    "sam2-large",
    "edgetam",
    "random-tiny",
}


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def test_registry_lists_every_model_with_metadata() -> None:
    models = list_models()
    assert {m.name for m in models} == EXPECTED
    assert models[0].name == DEFAULT_MODEL == "sam2.1-tiny"
    for spec in models:
        assert spec.licence and spec.guidance
        if spec.name == RANDOM_TINY:
            assert spec.random_weights and spec.hub_id is None and spec.download_mb == 0
        else:
            assert not spec.random_weights and spec.hub_id and spec.download_mb > 0
    assert resolve_model("sam2.1-large").spec.hub_id == "facebook/sam2.1-hiera-large"


def test_unknown_model_name_lists_valid_names() -> None:
    with pytest.raises(ModelError, match="unknown model 'sam3-huge'") as err:
        resolve_model("sam3-huge")
    for name in EXPECTED:
        assert name in str(err.value)
    with pytest.raises(ModelError, match="sam2.1-tiny"):
        create_engine("sam2", model="sam2.1-tinny", device="cpu")


def test_paths_resolve_or_fail_clearly(tmp_path) -> None:
    with pytest.raises(InputFileNotFoundError, match="not found"):
        resolve_model(str(tmp_path / "missing" / "sam2.1_hiera_tiny.pt"))
    with pytest.raises(InputFileNotFoundError):
        Sam2Engine(model=str(tmp_path / "nope.pt"), device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="config.json"):
        resolve_model(tmp_path / "empty")
    ckpt = tmp_path / "sam2.1_hiera_tiny.pt"
    ckpt.write_bytes(b"")
    assert resolve_model(ckpt).kind == "meta"
    other = tmp_path / "weights.bin"
    other.write_bytes(b"x")
    with pytest.raises(ModelError, match="unsupported model file"):
        resolve_model(other)


def test_random_tiny_is_always_available() -> None:
    source = resolve_model(RANDOM_TINY)
    assert source.kind == "random" and source.random_weights
    assert is_cached(RANDOM_TINY)
    with pytest.raises(ModelError, match="nothing to download"):
        download_model(RANDOM_TINY)


def test_offline_fetch_failure_is_one_actionable_message(empty_cache) -> None:
    assert not is_cached("sam2.1-tiny")
    with pytest.raises(WeightsNotFoundError) as err:
        download_model("sam2.1-tiny", progress=False)
    message = str(err.value)
    for needle in (
        "facebook/sam2.1-hiera-tiny",
        "model.safetensors",
        "HF_HUB_OFFLINE",
        "napari-sam2v models download sam2.1-tiny",
        "HF_HOME",
        "sam2.1_hiera_tiny.pt",
    ):
        assert needle in message
    assert isinstance(err.value, Sam2vError) and isinstance(err.value, FileNotFoundError)
    with pytest.raises(WeightsNotFoundError):
        create_engine("sam2", model="edgetam", device="cpu")


def test_a_failed_download_says_why_without_blaming_offline_mode(empty_cache, monkeypatch) -> None:
    """Online but unreachable: the reason is the network, and HF_HUB_OFFLINE is not named."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    def unreachable(*_args, **_kwargs):
        raise LocalEntryNotFoundError("Connection error, and we cannot find the file")

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    with pytest.raises(WeightsNotFoundError) as err:
        download_model("sam2.1-tiny", progress=False)
    message = str(err.value)
    assert "could not be downloaded: huggingface.co could not be reached" in message
    assert "HF_HUB_OFFLINE" not in message

    def refused(*_args, **_kwargs):
        raise PermissionError("401 Client Error\nmore detail")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", refused)
    with pytest.raises(
        WeightsNotFoundError, match="downloaded: PermissionError: 401 Client Error."
    ):
        download_model("sam2.1-tiny", progress=False)


def test_devices() -> None:
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(EngineError, match="unknown device"):
        select_device("tpu")
    with pytest.warns(UserWarning, match="random weights"):
        engine = Sam2Engine(model=RANDOM_TINY, device="cpu")
    assert engine.info.random_weights and engine.info.device == "cpu"
    assert engine.info.model == RANDOM_TINY and engine.info.engine == "sam2"
    engine.close()
    for bad in ({"embedding_cache_size": 0}, {"precision": "float16"}, {"num_threads": 0}):
        with pytest.raises(EngineError):
            Sam2Engine(model=RANDOM_TINY, device="cpu", **bad)
