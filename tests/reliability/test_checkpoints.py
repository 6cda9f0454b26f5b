"""Untrusted checkpoints: pickled code is refused unexecuted; broken files get clear errors."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from napari_sam2v.engines import create_engine  # noqa: E402
from napari_sam2v.engines.sam2.loading import load_model  # noqa: E402
from napari_sam2v.engines.sam2.registry import resolve_model  # noqa: E402
from napari_sam2v.errors import (  # noqa: E402
    CheckpointError,
    ModelError,
    Sam2vError,
    UnsafeCheckpointError,
)
from tests.reliability.cli_runs import ROOT  # noqa: E402
from tests.reliability.media import disk_prompts, write_disk_npy  # noqa: E402

pytestmark = pytest.mark.timeout(120)


class WriteMarker:
    """Unpickling this object runs code: it writes a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Path.write_text, (self.marker, "pwned"))


class SystemCall:
    """A payload that runs a shell command (the classic forum-checkpoint attack)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (os.system, (f"touch {self.marker}",))


def _zip_checkpoint(path: Path, marker: Path) -> Path:
    torch.save({"model": {"w": torch.zeros(2)}, "extra": WriteMarker(marker)}, path)
    return path


def _nested_payload(path: Path, marker: Path) -> Path:
    torch.save({"model": {"layer": {"weight": torch.zeros(1), "hook": SystemCall(marker)}}}, path)
    return path


def _legacy_pickle(path: Path, marker: Path) -> Path:
    """A raw (non-zip) pickle with a ``.pth`` name, as older tools wrote them."""
    torch.save({"model": WriteMarker(marker)}, path, _use_new_zipfile_serialization=False)
    return path


def _bare_pickle(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps({"model": SystemCall(marker)}, protocol=2))
    return path


PAYLOADS = {
    "zip-extra-entry.pt": _zip_checkpoint,
    "nested-state-dict.pt": _nested_payload,
    "legacy-format.pth": _legacy_pickle,
    "bare-pickle.pt": _bare_pickle,
}


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_pickled_code_is_refused_and_never_runs(tmp_path, name):
    marker = tmp_path / "marker.txt"
    path = PAYLOADS[name](tmp_path / name, marker)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_model(resolve_model(path))
    message = str(info.value)
    assert message.startswith(f"{path}: refused: the checkpoint contains pickled code")
    assert "trust" in message and "safetensors" in message
    with pytest.raises(UnsafeCheckpointError):
        create_engine("sam2", model=str(path), device="cpu", progress=False)
    assert not marker.exists(), "the checkpoint's code ran"


def test_the_cli_refuses_a_malicious_checkpoint_in_one_line(tmp_path):
    marker = tmp_path / "marker.txt"
    evil = _bare_pickle(tmp_path / "sam2.1_hiera_tiny.pt", marker)
    write_disk_npy(tmp_path / "video.npy", 4)
    disk_prompts().save(tmp_path / "prompts.json")
    out = tmp_path / "r.zarr"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "napari_sam2v.cli",
            "track",
            str(tmp_path / "video.npy"),
            "--prompts",
            str(tmp_path / "prompts.json"),
            "--out",
            str(out),
            "--model",
            str(evil),
            "--device",
            "cpu",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "refused" in lines[0]
    assert "Traceback" not in done.stderr
    assert not marker.exists() and not out.exists()


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> Path:
    """The random-tiny model saved as a Meta-style ``.pt`` checkpoint."""
    from napari_sam2v.engines.sam2.checkpoint import transformers_to_meta
    from napari_sam2v.engines.sam2.loading import build_random_tiny

    model = build_random_tiny()
    shared = model.shared_image_embedding.positional_embedding
    model.prompt_encoder.shared_embedding.positional_embedding.copy_(shared)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    torch.save({"model": transformers_to_meta(model.state_dict())}, path)
    return path


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.5, 0.99])
def test_truncated_checkpoints(good_checkpoint, tmp_path, fraction):
    data = good_checkpoint.read_bytes()
    path = tmp_path / "truncated.pt"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(
        CheckpointError,
        match=r"truncated\.pt: cannot read the checkpoint, the "
        r"file is truncated or corrupt",
    ):
        load_model(resolve_model(path))


def test_a_file_that_is_no_checkpoint_is_not_called_unsafe(tmp_path):
    """A text file named .pt was refused as 'contains pickled code'; it is no checkpoint."""
    path = tmp_path / "notes.pt"
    path.write_text("garbage\n")
    with pytest.raises(CheckpointError, match=r"notes\.pt: not a PyTorch checkpoint") as info:
        load_model(resolve_model(path))
    assert "pickled code" not in str(info.value)


@pytest.mark.parametrize("where", ["tensor-data", "pickle-stream"])
def test_corrupt_checkpoint_bytes(good_checkpoint, tmp_path, where):
    """Damaged bytes are caught by the zip checksums: never loaded silently as wrong
    weights, never mistaken for pickled code."""
    data = bytearray(good_checkpoint.read_bytes())
    if where == "tensor-data":
        middle = len(data) // 2
        data[middle : middle + 4096] = bytes(4096)
    else:
        start = data.find(b"data.pkl") + 60  # inside the pickle stream's record
        data[start : start + 64] = b"\xff" * 64
    path = tmp_path / "corrupt.pt"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as info:
        load_model(resolve_model(path))
    assert str(info.value).startswith(f"{path}: the checkpoint is corrupt (checksum mismatch")
    assert "download it again" in str(info.value)
    assert not isinstance(info.value, UnsafeCheckpointError)


def test_wrong_architecture_checkpoint(tmp_path):
    path = tmp_path / "resnet.pt"
    torch.save(
        {"model": {"conv1.weight": torch.zeros(8, 3, 7, 7), "fc.bias": torch.zeros(10)}}, path
    )
    with pytest.raises(CheckpointError) as info:
        load_model(resolve_model(path))
    assert str(info.value).startswith(f"{path}")


def test_state_dict_without_tensors(tmp_path):
    path = tmp_path / "numbers.pt"
    torch.save({"model": {"w": [1.0, 2.0]}}, path)
    with pytest.raises(CheckpointError, match=r"not a SAM 2 checkpoint"):
        load_model(resolve_model(path))


def test_checkpoint_with_a_missing_tensor(good_checkpoint, tmp_path):
    state = torch.load(good_checkpoint, weights_only=True)["model"]
    state.pop(sorted(state)[len(state) // 2])
    path = tmp_path / "incomplete.pt"
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointError, match=r"incomplete\.pt: "):
        load_model(resolve_model(path))


def test_truncated_safetensors(tmp_path):
    from safetensors.torch import save_file

    good = tmp_path / "good.safetensors"
    save_file({"w": torch.arange(4096, dtype=torch.float32)}, str(good))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"bad\.safetensors: corrupt or truncated"):
        load_model(resolve_model(bad))


def test_pickle_disguised_as_safetensors_is_not_executed(tmp_path):
    marker = tmp_path / "marker.txt"
    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps(SystemCall(marker)))
    with pytest.raises(CheckpointError):
        load_model(resolve_model(path))
    assert not marker.exists()


def test_model_folder_with_only_pickled_weights_is_refused(tmp_path):
    """A transformers folder whose weights are a pickle (``pytorch_model.bin``) is not loaded."""
    from transformers import Sam2VideoConfig

    marker = tmp_path / "marker.txt"
    folder = tmp_path / "downloaded"
    folder.mkdir()
    Sam2VideoConfig().save_pretrained(folder)
    _bare_pickle(folder / "pytorch_model.bin", marker)
    with pytest.raises(Sam2vError):
        load_model(resolve_model(folder))
    assert not marker.exists()


def test_folder_of_another_model_type(tmp_path):
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(CheckpointError, match=r"model_type 'bert'; a SAM 2 video model"):
        load_model(resolve_model(folder))


def test_missing_and_unknown_models(tmp_path):
    with pytest.raises(ModelError, match=r"unknown model 'sam3-huge'"):
        resolve_model("sam3-huge")
    with pytest.raises(Sam2vError, match=r"model file or folder not found"):
        resolve_model(str(tmp_path / "nothing.pt"))
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelError, match=r"unsupported model file"):
        resolve_model(str(tmp_path / "weights.bin"))
