"""Meta checkpoints: strict key mapping for all eight variants, safe loading, equivalence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_sam2v.engines.sam2.checkpoint import (
    load_meta_state_dict,
    meta_to_transformers,
    transformers_to_meta,
)
from napari_sam2v.engines.sam2.configs import _VARIANTS, config_from_meta_shapes, sam2_video_config
from napari_sam2v.engines.sam2.loading import load_model
from napari_sam2v.engines.sam2.registry import resolve_model
from napari_sam2v.errors import CheckpointError, UnsafeCheckpointError

# Key/shape manifests of the eight official checkpoints (copied from the project's shared
# reference folder; see tests/data/sam2_state_dict_keys/README.md).
MANIFESTS = Path(__file__).resolve().parents[1] / "data" / "sam2_state_dict_keys"
MANIFEST_FILES = sorted(MANIFESTS.glob("*.json"))
EXPECTED_DESCRIPTION = {
    "sam2.1_hiera_tiny": "SAM 2.1 tiny",
    "sam2.1_hiera_small": "SAM 2.1 small",
    "sam2.1_hiera_base_plus": "SAM 2.1 base-plus",
    "sam2.1_hiera_large": "SAM 2.1 large",
    "sam2_hiera_tiny": "SAM 2 tiny",
    "sam2_hiera_small": "SAM 2 small",
    "sam2_hiera_base_plus": "SAM 2 base-plus",
    "sam2_hiera_large": "SAM 2 large",
}


def _shapes(path: Path) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v[0]) for k, v in json.loads(path.read_text())["keys"].items()}


def _meta_model(config):
    from transformers import Sam2VideoModel

    with torch.device("meta"):
        return Sam2VideoModel(config)


def test_all_eight_manifests_are_present() -> None:
    assert {p.stem for p in MANIFEST_FILES} == set(EXPECTED_DESCRIPTION)


@pytest.mark.parametrize("manifest", MANIFEST_FILES, ids=lambda p: p.stem)
def test_meta_keys_map_strictly_onto_transformers(manifest: Path) -> None:
    shapes = _shapes(manifest)
    config, description = config_from_meta_shapes(shapes, source=manifest.name)
    assert description == EXPECTED_DESCRIPTION[manifest.stem]
    model = _meta_model(config)
    # random tensors of the manifest's layout (on the meta device: no memory used)
    meta_sd = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    mapped = meta_to_transformers(meta_sd)
    expected = model.state_dict()
    assert set(mapped) == set(expected), (
        f"missing {sorted(set(expected) - set(mapped))[:3]}, "
        f"unused {sorted(set(mapped) - set(expected))[:3]}"
    )
    for key, tensor in expected.items():
        assert tuple(mapped[key].shape) == tuple(tensor.shape), key
    # strict load: every key used, none missing
    result = model.load_state_dict(mapped, strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys
    # the inverse mapping gives back exactly Meta's key set and shapes
    back = transformers_to_meta(expected)
    assert {k: tuple(v.shape) for k, v in back.items()} == shapes


def test_random_values_survive_the_mapping_round_trip() -> None:
    shapes = _shapes(MANIFESTS / "sam2.1_hiera_tiny.json")
    gen = torch.Generator().manual_seed(0)
    meta_sd = {k: torch.randn(s, generator=gen) for k, s in shapes.items()}
    back = transformers_to_meta(meta_to_transformers(meta_sd))
    assert set(back) == set(meta_sd)
    for key, value in meta_sd.items():
        assert torch.equal(back[key], value), key


def test_unknown_or_inconsistent_architecture_is_refused() -> None:
    shapes = _shapes(MANIFESTS / "sam2.1_hiera_tiny.json")
    odd = dict(shapes)
    odd["image_encoder.trunk.patch_embed.proj.weight"] = (80, 3, 7, 7)
    with pytest.raises(CheckpointError, match="unknown SAM 2 image encoder"):
        config_from_meta_shapes(odd)
    partial = dict(shapes)
    del partial["no_obj_embed_spatial"]
    with pytest.raises(CheckpointError, match="inconsistent"):
        config_from_meta_shapes(partial)
    with pytest.raises(CheckpointError, match="not a SAM 2 checkpoint"):
        config_from_meta_shapes({"foo": (1,)})


class _Payload:
    """A pickle that would create a marker file when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_code_is_refused_not_executed(tmp_path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "extra": _Payload(marker)}, path)
    assert not marker.exists()
    with pytest.raises(UnsafeCheckpointError, match="refused"):
        load_meta_state_dict(path)
    with pytest.raises(UnsafeCheckpointError):
        load_model(resolve_model(path))
    assert not marker.exists()


def test_truncated_and_corrupt_checkpoints(tmp_path) -> None:
    good = tmp_path / "good.pt"
    torch.save({"model": {"w": torch.arange(10_000, dtype=torch.float32)}}, good)
    assert torch.equal(load_meta_state_dict(good)["w"], torch.arange(10_000, dtype=torch.float32))
    data = good.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_meta_state_dict(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError):
        load_meta_state_dict(garbage)
    no_tensors = tmp_path / "dict.pt"
    torch.save({"model": {"w": [1, 2]}}, no_tensors)
    with pytest.raises(CheckpointError, match="not a SAM 2 checkpoint"):
        load_meta_state_dict(no_tensors)
    bad_st = tmp_path / "bad.safetensors"
    bad_st.write_bytes(b"{}")
    with pytest.raises(CheckpointError, match="safetensors"):
        load_meta_state_dict(bad_st)
    # right format, wrong contents: strict loading names what is missing
    not_sam = tmp_path / "not_sam.pt"
    torch.save({"model": {"w": torch.zeros(3)}}, not_sam)
    with pytest.raises(CheckpointError, match="not a SAM 2 checkpoint"):
        load_model(resolve_model(not_sam))


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    """sam2.1-tiny architecture with seeded random weights, in both formats."""
    from transformers import Sam2VideoModel

    root = tmp_path_factory.mktemp("tiny")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        model = Sam2VideoModel(sam2_video_config(_VARIANTS[0], sam21=True)).eval()
    # real checkpoints hold one Fourier matrix, shared by the two transformers buffers
    shared = model.shared_image_embedding.positional_embedding
    model.prompt_encoder.shared_embedding.positional_embedding.copy_(shared)
    folder = root / "hf"
    model.save_pretrained(folder)
    meta = root / "sam2.1_hiera_tiny.pt"
    torch.save({"model": transformers_to_meta(model.state_dict())}, meta)
    incomplete = root / "incomplete.pt"
    sd = transformers_to_meta(model.state_dict())
    del sd["obj_ptr_proj.layers.0.bias"]
    torch.save({"model": sd}, incomplete)
    return folder, meta, incomplete


def test_meta_checkpoint_equals_transformers_weights(tiny_pair) -> None:
    folder, meta, incomplete = tiny_pair
    from_meta = load_model(resolve_model(meta))
    from_folder = load_model(resolve_model(folder))
    assert from_meta.description.startswith("SAM 2.1 tiny")
    sd_meta, sd_folder = from_meta.model.state_dict(), from_folder.model.state_dict()
    assert set(sd_meta) == set(sd_folder)
    for key in sd_folder:
        assert torch.equal(sd_meta[key], sd_folder[key]), key
    with pytest.raises(CheckpointError, match="missing"):
        load_model(resolve_model(incomplete))


@pytest.mark.slow
def test_meta_checkpoint_gives_identical_outputs(tiny_pair) -> None:
    from napari_sam2v.engines.sam2 import Sam2Engine
    from napari_sam2v.prompts import Prompt

    folder, meta, _ = tiny_pair
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (3, 64, 80, 3), dtype=np.uint8)
    outputs = []
    for source in (meta, folder):
        engine = Sam2Engine(model=str(source), device="cpu", num_threads=2)
        engine.set_video(frames)
        first = engine.add_prompt(Prompt(frame=0, object_id=1, points=[[30, 20]]))
        outputs.append([first, *engine.propagate()])
        engine.close()
    for a, b in zip(*outputs, strict=True):
        assert np.array_equal(a.masks[1], b.masks[1])
        # same weights, same outputs (up to float32 summation order in the kernels)
        assert a.scores[1].object_score_logit == pytest.approx(
            b.scores[1].object_score_logit, abs=1e-5
        )
        assert a.scores[1].iou == pytest.approx(b.scores[1].iou, abs=1e-5)
