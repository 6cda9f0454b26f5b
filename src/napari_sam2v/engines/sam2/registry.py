"""Model registry: short names for the supported SAM 2 / SAM 2.1 / EdgeTAM weights.

Every supported model has a short name (``sam2.1-tiny``, ``edgetam``, ...) that maps
to a :class:`ModelSpec`: its Hugging Face hub id, licence, download size and a
one-line guidance. Weights are fetched with :mod:`huggingface_hub` into its
standard cache (``HF_HOME``); ``HF_HUB_OFFLINE=1`` is honoured. Local paths work
too: a folder in transformers format, a Meta checkpoint (``sam2.1_hiera_tiny.pt``)
or a ``.safetensors`` file with Meta key names.

``random-tiny`` is a small random-weight model of the same architecture, built
offline for tests and CI; its output is never a result.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from napari_sam2v.errors import InputFileNotFoundError, ModelError, WeightsNotFoundError

__all__ = [
    "DEFAULT_MODEL",
    "DEVICES",
    "PRECISIONS",
    "RANDOM_TINY",
    "ModelSource",
    "ModelSpec",
    "download_model",
    "get_model",
    "is_cached",
    "list_models",
    "resolve_model",
]

#: Name of the model used when none is given.
DEFAULT_MODEL = "sam2.1-tiny"
#: Name of the random-weight test model.
RANDOM_TINY = "random-tiny"
#: Precision levels offered to users (CLI, dock): ``"auto"`` (the default: ``"mixed"``
#: on a CPU with native bf16, else ``"float32"``), then fastest last; ``Sam2Engine``
#: also takes ``"bfloat16"`` (the whole model cast, kept for comparison). Listed here
#: so that callers need not import torch.
PRECISIONS = ("auto", "float32", "mixed", "fast")
#: Device names offered to users (CLI, dock): ``"auto"`` picks CUDA, then MPS, then
#: the CPU. ``Sam2Engine`` also takes ``"cuda:N"``.
DEVICES = ("auto", "cpu", "cuda", "mps")

#: Files a transformers-format model folder needs.
_WEIGHT_PATTERNS = ["config.json", "*.safetensors"]


@dataclass(frozen=True)
class ModelSpec:
    """One supported model.

    Parameters
    ----------
    name : str
        Short name (``"sam2.1-tiny"``).
    hub_id : str or None
        Hugging Face hub repository in transformers format; ``None`` for models
        built locally (``random-tiny``).
    architecture : str
        ``"sam2_video"`` or ``"edgetam_video"`` (the transformers model type).
    licence : str
        Licence of the weights.
    download_mb : int
        Approximate download size in MB (0 when nothing is downloaded).
    guidance : str
        One line on speed versus quality.
    random_weights : bool
        ``True`` for test models whose output is meaningless.
    """

    name: str
    hub_id: str | None
    architecture: str
    licence: str
    download_mb: int
    guidance: str
    random_weights: bool = False


_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        "sam2.1-tiny",
        "facebook/sam2.1-hiera-tiny",
        "sam2_video",
        "Apache-2.0",
        156,
        "Default: fastest SAM 2.1, good for clear objects; use on CPU laptops.",
    ),
    ModelSpec(
        "sam2.1-small",
        "facebook/sam2.1-hiera-small",
        "sam2_video",
        "Apache-2.0",
        184,
        "Slightly slower than tiny, a little more robust on cluttered scenes.",
    ),
    ModelSpec(
        "sam2.1-base-plus",
        "facebook/sam2.1-hiera-base-plus",
        "sam2_video",
        "Apache-2.0",
        324,
        "About 2x the cost of tiny; better on thin or low-contrast objects. GPU advised.",
    ),
    ModelSpec(
        "sam2.1-large",
        "facebook/sam2.1-hiera-large",
        "sam2_video",
        "Apache-2.0",
        898,
        "Best quality, about 6x the cost of tiny; use on a GPU.",
    ),
    ModelSpec(
        "sam2-tiny",
        "facebook/sam2-hiera-tiny",
        "sam2_video",
        "Apache-2.0",
        156,
        "Original SAM 2 tiny; prefer sam2.1-tiny unless reproducing old results.",
    ),
    ModelSpec(
        "sam2-small",
        "facebook/sam2-hiera-small",
        "sam2_video",
        "Apache-2.0",
        184,
        "Original SAM 2 small; prefer sam2.1-small unless reproducing old results.",
    ),
    ModelSpec(
        "sam2-base-plus",
        "facebook/sam2-hiera-base-plus",
        "sam2_video",
        "Apache-2.0",
        324,
        "Original SAM 2 base-plus; prefer sam2.1-base-plus.",
    ),
    ModelSpec(
        "sam2-large",
        "facebook/sam2-hiera-large",
        "sam2_video",
        "Apache-2.0",
        898,
        "Original SAM 2 large; prefer sam2.1-large.",
    ),
    ModelSpec(
        "edgetam",
        "yonigozlan/EdgeTAM-hf",
        "edgetam_video",
        "Apache-2.0",
        56,
        "On-device SAM 2 variant, about 2x faster than sam2.1-tiny on CPU; a bit less accurate.",
    ),
    ModelSpec(
        RANDOM_TINY,
        None,
        "sam2_video",
        "Apache-2.0",
        0,
        "Random weights, tiny and fast: for tests and CI only, never for results.",
        random_weights=True,
    ),
)
_BY_NAME = {spec.name: spec for spec in _MODELS}


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from, as resolved by :func:`resolve_model`.

    Parameters
    ----------
    kind : str
        ``"registry"`` (a short name), ``"random"`` (``random-tiny``),
        ``"folder"`` (transformers format), ``"meta"`` (Meta ``.pt``) or
        ``"safetensors"`` (one file with Meta key names).
    name : str
        Short name, or the path as given.
    path : Path or None
        Local path for ``folder``, ``meta`` and ``safetensors``.
    spec : ModelSpec or None
        Registry entry for ``registry`` and ``random``.
    """

    kind: str
    name: str
    path: Path | None = None
    spec: ModelSpec | None = None

    @property
    def random_weights(self) -> bool:
        """Whether the model has random weights (test model)."""
        return self.spec is not None and self.spec.random_weights


def list_models() -> list[ModelSpec]:
    """Return every supported model, in a stable order (default first).

    Returns
    -------
    list of ModelSpec

    Examples
    --------
    >>> from napari_sam2v.engines.sam2.registry import list_models
    >>> list_models()[0].name
    'sam2.1-tiny'
    """
    return list(_MODELS)


def get_model(name: str) -> ModelSpec:
    """Return the :class:`ModelSpec` of a short name.

    Raises
    ------
    ModelError
        For an unknown name; the message lists the valid names.
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ModelError(
            f"unknown model {name!r}: choose one of {', '.join(_BY_NAME)}, "
            "or give the path of a transformers model folder or a Meta checkpoint (.pt)"
        ) from None


def looks_like_path(text: str) -> bool:
    """Whether a model argument is meant as a path (a separator, a weights suffix, ~ or .)."""
    return (
        os.sep in text
        or "/" in text
        or text.endswith((".pt", ".pth", ".safetensors"))
        or text.startswith(("~", "."))
    )


def resolve_model(name_or_path: str | os.PathLike[str]) -> ModelSource:
    """Resolve a short model name or a local path.

    Parameters
    ----------
    name_or_path : str or path-like
        A registry name (see :func:`list_models`), a transformers model folder
        (with ``config.json``), a Meta checkpoint ``.pt``/``.pth`` or a
        ``.safetensors`` file with Meta key names.

    Returns
    -------
    ModelSource

    Raises
    ------
    ModelError
        For an unknown name or an unusable folder.
    InputFileNotFoundError
        For a path that does not exist.
    """
    text = os.fspath(name_or_path)
    if not isinstance(name_or_path, os.PathLike) and text in _BY_NAME:
        spec = _BY_NAME[text]
        return ModelSource("random" if spec.random_weights else "registry", text, spec=spec)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(
                f"{path}: not a transformers model folder (no config.json); give the folder "
                "that holds config.json and model.safetensors, or a Meta .pt checkpoint"
            )
        return ModelSource("folder", text, path=path)
    if path.is_file():
        if path.suffix in (".pt", ".pth"):
            return ModelSource("meta", text, path=path)
        if path.suffix == ".safetensors":
            return ModelSource("safetensors", text, path=path)
        raise ModelError(
            f"{path}: unsupported model file; use a Meta checkpoint (.pt), a .safetensors "
            "file or a transformers model folder"
        )
    if isinstance(name_or_path, os.PathLike) or looks_like_path(text):
        raise InputFileNotFoundError(f"model file or folder not found: {path}")
    return ModelSource("registry", text, spec=get_model(text))


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def is_cached(name: str) -> bool:
    """Whether the weights of a registry model are in the local Hugging Face cache.

    ``random-tiny`` is always available (it is built locally).

    Parameters
    ----------
    name : str
        Registry name.

    Raises
    ------
    ModelError
        For an unknown name.
    """
    spec = get_model(name)
    if spec.hub_id is None:
        return True
    from huggingface_hub import snapshot_download

    try:
        folder = Path(
            snapshot_download(spec.hub_id, allow_patterns=_WEIGHT_PATTERNS, local_files_only=True)
        )
    except Exception:
        return False
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


@contextmanager
def _progress_bars(enabled: bool) -> Iterator[None]:
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    was_disabled = are_progress_bars_disabled()
    if enabled:
        enable_progress_bars()
    else:
        disable_progress_bars()
    try:
        yield
    finally:
        if was_disabled:
            disable_progress_bars()
        else:
            enable_progress_bars()


def _reporting_bar(on_progress: Callable[[int, int], None]) -> type:
    """A tqdm class that also reports its byte counts to ``on_progress``.

    huggingface_hub draws its byte bars (unit ``"B"``) with the class it is given;
    the bar of the file count is not reported.
    """
    from tqdm.auto import tqdm

    class _ReportingBar(tqdm):
        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            if self.unit == "B":
                on_progress(int(self.n), int(self.total or 0))
            return shown

    return _ReportingBar


def _why_not_downloaded(exc: Exception) -> str:
    """A short reason for a failed hub download (no network, or what the hub said)."""
    name = type(exc).__name__
    if name == "LocalEntryNotFoundError" or isinstance(exc, (ConnectionError, TimeoutError)):
        return f"huggingface.co could not be reached ({name})"
    detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{name}: {detail}" if detail else name


def _fetch_failed_message(spec: ModelSpec, reason: str) -> str:
    cache = os.environ.get("HF_HOME", str(Path("~/.cache/huggingface").expanduser()))
    url = f"https://huggingface.co/{spec.hub_id}"
    return (
        f"model {spec.name!r}: the weights (config.json and model.safetensors of {url}) are "
        f"not in the Hugging Face cache ({cache}/hub) and could not be downloaded: {reason}. "
        f"Fix: on a machine with internet run 'napari-sam2v models download {spec.name}' "
        "(then copy the cache folder here, or set HF_HOME to it), or download that folder "
        "yourself and pass its path as the model, or pass the path of Meta's original "
        "checkpoint (e.g. sam2.1_hiera_tiny.pt)."
        + (" Unset HF_HUB_OFFLINE to allow downloads." if _offline() else "")
    )


def download_model(
    name: str,
    *,
    progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Fetch the weights of a registry model into the Hugging Face cache.

    Already-cached weights are used without network access. With
    ``HF_HUB_OFFLINE=1`` only the cache is consulted.

    Parameters
    ----------
    name : str
        Registry name (see :func:`list_models`).
    progress : bool, optional
        Show a progress bar while downloading.
    on_progress : callable, optional
        ``on_progress(bytes_done, bytes_total)``, called from the downloading thread
        as bytes arrive (``bytes_total`` is 0 while the size is not known yet). A
        GUI must hand it over to its own thread (a Qt signal does).

    Returns
    -------
    Path
        Folder holding ``config.json`` and the ``.safetensors`` weights.

    Raises
    ------
    ModelError
        For an unknown name or a model that is built locally (``random-tiny``).
    WeightsNotFoundError
        If the weights are not cached and cannot be downloaded; the message says
        which files are missing, where to put them and the offline options.
    CheckpointError
        If a weight file does not match the SHA-256 the hub publishes (or, offline,
        the content address of its cache blob): the download is damaged.
    """
    spec = get_model(name)
    if spec.hub_id is None:
        raise ModelError(f"model {name!r} is built locally and has nothing to download")
    from huggingface_hub import snapshot_download

    bar = None if on_progress is None else _reporting_bar(on_progress)
    with _progress_bars(progress or on_progress is not None):
        try:
            folder = Path(
                snapshot_download(
                    spec.hub_id,
                    allow_patterns=_WEIGHT_PATTERNS,
                    local_files_only=_offline(),
                    tqdm_class=bar,
                )
            )
        except Exception as exc:
            reason = "HF_HUB_OFFLINE is set" if _offline() else _why_not_downloaded(exc)
            raise WeightsNotFoundError(_fetch_failed_message(spec, reason)) from None
    if not ((folder / "config.json").is_file() and any(folder.glob("*.safetensors"))):
        raise WeightsNotFoundError(_fetch_failed_message(spec, "the download is incomplete"))
    _verify_download(spec, folder)
    return folder


def _verify_download(spec: ModelSpec, folder: Path) -> None:
    """Check the weights against the hub's SHA-256 (or, offline, the cache's blob names)."""
    from napari_sam2v.engines.sam2.integrity import hub_sha256, verify_weights

    expected: dict[str, str] = {}
    if not _offline() and spec.hub_id is not None:
        names = sorted(p.name for p in folder.glob("*.safetensors"))
        try:
            expected = hub_sha256(spec.hub_id, names, revision=folder.name)
        except Exception:  # hub unreachable: the content addresses are checked below
            expected = {}
    verify_weights(folder, expected)
