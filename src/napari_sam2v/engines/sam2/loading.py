"""Build a ready-to-run transformers video model from a resolved model source."""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from napari_sam2v.engines.sam2.checkpoint import load_meta_state_dict, meta_to_transformers
from napari_sam2v.engines.sam2.configs import config_from_meta_shapes, random_tiny_config
from napari_sam2v.engines.sam2.registry import ModelSource, download_model
from napari_sam2v.engines.sam2.session import streaming_model_class
from napari_sam2v.errors import CheckpointError, ModelError

__all__ = ["LoadedModel", "build_random_tiny", "load_model"]

#: Seed of the random-tiny weights (fixed: the model is deterministic).
RANDOM_TINY_SEED = 0


@dataclass
class LoadedModel:
    """A model ready for inference plus its provenance."""

    model: Any
    description: str
    model_hash: str
    random_weights: bool


def _fingerprint(paths: list[Path]) -> str:
    """Fast, stable fingerprint of weight files (size plus first and last MiB)."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        size = path.stat().st_size
        digest.update(f"{path.name}:{size}".encode())
        with path.open("rb") as fh:
            digest.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), 2)
                digest.update(fh.read(1 << 20))
    return "sha256:" + digest.hexdigest()[:16]


def build_random_tiny() -> Any:
    """Build the deterministic ``random-tiny`` model (without touching the global RNG)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_TINY_SEED)
        model = streaming_model_class("sam2_video")(random_tiny_config())
    return model


def _load_folder(folder: Path) -> Any:
    try:
        config_text = (folder / "config.json").read_text()
        model_type = json.loads(config_text).get("model_type", "")
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{folder / 'config.json'}: unreadable ({exc})") from None
    if model_type not in ("sam2_video", "edgetam_video"):
        raise CheckpointError(
            f"{folder}: config.json has model_type {model_type!r}; a SAM 2 video model "
            "('sam2_video') or EdgeTAM video model ('edgetam_video') is needed"
        )
    if model_type == "edgetam_video" and '"timm_wrapper"' in config_text:
        try:
            import timm  # noqa: F401 - EdgeTAM's RepViT backbone comes from timm
        except Exception as exc:
            raise ModelError(
                f"{folder}: EdgeTAM needs the 'timm' package (and a working torchvision) for its "
                f"image encoder ({type(exc).__name__}); install them with 'pip install timm', "
                "or use a SAM 2.1 model such as sam2.1-tiny"
            ) from None
    cls = streaming_model_class(model_type)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cls.from_pretrained(str(folder), use_safetensors=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{folder}: cannot load the model weights ({type(exc).__name__}: {exc})"
        ) from None


def _load_meta(path: Path) -> tuple[Any, str]:
    state = load_meta_state_dict(path)
    config, description = config_from_meta_shapes(
        {k: tuple(v.shape) for k, v in state.items()}, source=str(path)
    )
    mapped = meta_to_transformers(state)
    model = streaming_model_class("sam2_video")(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(mapped))
    unused = sorted(set(mapped) - set(expected))
    wrong = sorted(k for k in set(expected) & set(mapped) if expected[k].shape != mapped[k].shape)
    if missing or unused or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {missing[0]})")
        if unused:
            parts.append(f"{len(unused)} unused (first: {unused[0]})")
        if wrong:
            parts.append(f"{len(wrong)} with wrong shapes (first: {wrong[0]})")
        raise CheckpointError(f"{path}: does not match {description}: " + "; ".join(parts))
    model.load_state_dict(mapped, strict=True)
    return model, f"{description} (Meta checkpoint {path.name})"


def load_model(source: ModelSource, *, progress: bool = True) -> LoadedModel:
    """Load (or build) the model a :class:`ModelSource` points to, in eval mode on CPU.

    Parameters
    ----------
    source : ModelSource
        From :func:`~napari_sam2v.engines.sam2.registry.resolve_model`.
    progress : bool, optional
        Show a download progress bar for hub models.

    Returns
    -------
    LoadedModel

    Raises
    ------
    WeightsNotFoundError
        Registry weights that are neither cached nor downloadable.
    CheckpointError
        Corrupt, unsafe or mismatching checkpoints.
    """
    if source.kind == "random":
        model = build_random_tiny()
        loaded = LoadedModel(model, "random-tiny (random weights)", "random-tiny-seed0", True)
    elif source.kind == "registry":
        folder = download_model(source.name, progress=progress)
        model = _load_folder(folder)
        files = list(folder.glob("*.safetensors"))
        loaded = LoadedModel(model, source.name, _fingerprint(files), False)
    elif source.kind == "folder":
        assert source.path is not None
        model = _load_folder(source.path)
        files = list(source.path.glob("*.safetensors")) or [source.path / "config.json"]
        loaded = LoadedModel(model, f"folder {source.path.name}", _fingerprint(files), False)
    elif source.kind in ("meta", "safetensors"):
        assert source.path is not None
        model, description = _load_meta(source.path)
        loaded = LoadedModel(model, description, _fingerprint([source.path]), False)
    else:
        raise ModelError(f"unknown model source kind {source.kind!r}")
    loaded.model.eval()
    return loaded
