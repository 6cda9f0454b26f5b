"""Integrity of downloaded weights: SHA-256 of every cached file against the hub's.

``huggingface_hub`` writes a download to ``<blob>.incomplete`` and renames it when
the transfer ends, and checks the size, but not the content. This module checks the
content of the weight files a model folder links to:

* against the SHA-256 the hub publishes for each LFS file (``HfApi.get_paths_info``),
  when the hub can be reached;
* otherwise against the cache's own content address: an LFS blob in the cache is
  named after its SHA-256, so a damaged blob no longer matches its name.

A file is hashed once per process (size and modification time are remembered).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

from napari_sam2v.errors import CheckpointError

__all__ = ["cached_blob_sha256", "file_sha256", "hub_sha256", "verify_weights"]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 8 << 20
_verified: set[tuple[str, int, int, str]] = set()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 8 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def cached_blob_sha256(path: Path) -> str | None:
    """The SHA-256 a Hugging Face cache file claims by its blob name, if it has one.

    Snapshot files are links to ``blobs/<sha256>`` for LFS files (weights) and to
    ``blobs/<git sha1>`` for small text files, which have no SHA-256 to check.
    """
    name = Path(os.path.realpath(path)).name
    return name if _SHA256.fullmatch(name) else None


def hub_sha256(hub_id: str, filenames: list[str], *, revision: str | None = None) -> dict[str, str]:
    """SHA-256 of the LFS files ``filenames`` of a hub repository (needs the network).

    Parameters
    ----------
    hub_id : str
        Repository id, e.g. ``"facebook/sam2.1-hiera-tiny"``.
    filenames : list of str
        Paths inside the repository.
    revision : str, optional
        Commit hash (the snapshot folder's name) or branch.

    Returns
    -------
    dict
        ``filename -> sha256`` for the files stored with LFS.
    """
    from huggingface_hub import HfApi

    infos = HfApi().get_paths_info(hub_id, filenames, revision=revision)
    out: dict[str, str] = {}
    for info in infos:
        lfs = getattr(info, "lfs", None)
        sha = getattr(lfs, "sha256", None)
        if isinstance(sha, str) and _SHA256.fullmatch(sha):
            out[str(info.path)] = sha
    return out


def verify_weights(folder: Path, expected: Mapping[str, str] | None = None) -> list[str]:
    """Check the ``.safetensors`` files of a model folder against known SHA-256s.

    Parameters
    ----------
    folder : Path
        A model folder (a Hugging Face cache snapshot or a plain folder).
    expected : mapping of str to str, optional
        ``file name -> sha256`` (from :func:`hub_sha256`). Files not listed are
        checked against their cache blob name when they have one.

    Returns
    -------
    list of str
        Names of the files whose content was checked.

    Raises
    ------
    CheckpointError
        If a file's content does not match: it is damaged (an interrupted or
        corrupted download); the message names the file and how to fix it.
    """
    expected = dict(expected or {})
    checked: list[str] = []
    for path in sorted(folder.glob("*.safetensors")):
        want = expected.get(path.name) or cached_blob_sha256(path)
        if want is None:
            continue
        real = Path(os.path.realpath(path))
        stat = real.stat()
        key = (str(real), stat.st_size, stat.st_mtime_ns, want)
        if key not in _verified:
            got = file_sha256(real)
            if got != want:
                raise CheckpointError(
                    f"{path}: the downloaded weights are damaged (SHA-256 {got[:12]}... "
                    f"but the hub publishes {want[:12]}...); delete {real} and download "
                    "the model again ('napari-sam2v models download NAME')"
                )
            _verified.add(key)
        checked.append(path.name)
    return checked
