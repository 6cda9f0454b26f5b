"""Output folders that stay put: a row keeps the folder an earlier batch gave it.

A manifest row without a ``name`` cell gets a name made from its paths, and that
name depends on the other rows sharing its file name: ``siteA/GX010001.MP4`` alone
is ``GX010001``, beside ``siteB/GX010001.MP4`` it is ``siteA_GX010001``. Without a
record, adding the second row would send the first video to a new folder, track it
again and leave its results behind. So each batch records the name it gave every
row in ``<out>/.napari-sam2v-names.json``, and the next batch into the same output
folder gives a row its recorded name first.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections import Counter
from pathlib import Path

from napari_sam2v._files import atomic_write_text
from napari_sam2v.batch.manifest import Manifest, ManifestRow, _row_digest
from napari_sam2v.errors import StoreError

__all__ = ["NAMES_FILE", "keep_earlier_names"]

#: The record of the names given, in the batch output folder.
NAMES_FILE = ".napari-sam2v-names.json"
_VERSION = 1


def _path_key(path: Path, base: Path) -> str:
    """``path`` relative to the manifest's folder when inside it (a moved tree matches)."""
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def _row_key(row: ManifestRow, base: Path) -> str:
    """What identifies a row across runs (a JSON text): its video, prompts and channel."""
    video, prompts = _path_key(row.video, base), _path_key(row.prompts, base)
    return json.dumps([video, prompts, row.channel])


def _read_record(path: Path) -> dict[str, str] | None:
    """The recorded names, or ``None`` when there is no record (or it is unreadable)."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        names = record["names"]
        if not isinstance(names, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in names.items()
        ):
            raise ValueError("'names' is not a mapping of rows to names")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        warnings.warn(
            f"{path} cannot be read ({exc}); it is written again, and this time a row "
            "keeps an earlier folder only if its video finished there",
            stacklevel=3,
        )
        return None
    return names


def _finished_folders(out: Path) -> dict[str, str]:
    """Video path -> folder, from the ``done.json`` of batches that kept no record.

    Only videos finished in exactly one folder are listed (a video tracked with two
    prompt files cannot be told apart this way).
    """
    folders: dict[str, list[str]] = {}
    for marker in sorted(out.glob("*/done.json")):
        try:
            video = json.loads(marker.read_text(encoding="utf-8"))["video"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(video, str):
            folders.setdefault(video, []).append(marker.parent.name)
    return {video: names[0] for video, names in folders.items() if len(names) == 1}


def _earlier(manifest: Manifest, record: dict[str, str] | None, out: Path) -> dict[int, str]:
    """Row index -> the name an earlier batch gave that row (generated names only)."""
    base = manifest.path.parent
    if record is None:  # a folder from before the record: its finished videos
        finished = _finished_folders(out)
        videos = Counter(str(r.video) for r in manifest)
        record = {
            _row_key(row, base): finished[str(row.video)]
            for row in manifest
            if videos[str(row.video)] == 1 and str(row.video) in finished
        }
    earlier = {}
    for index, row in enumerate(manifest):
        name = record.get(_row_key(row, base))
        if row.generated and name is not None:
            earlier[index] = name
    return earlier


def _keep(manifest: Manifest, earlier: dict[int, str]) -> Manifest:
    chosen = {i: r.name for i, r in enumerate(manifest) if not r.generated}
    taken = {name.lower() for name in chosen.values()}
    for index, kept in earlier.items():
        if kept.lower() not in taken:
            chosen[index] = kept
            taken.add(kept.lower())
    rows = []
    for index, row in enumerate(manifest):
        name = chosen.get(index, "")
        if not name:
            name = row.name
            if name.lower() in taken:
                fields = {k: v for k, v in dataclasses.asdict(row).items() if k != "name"}
                name = f"{name}-{_row_digest(fields)}"
            taken.add(name.lower())
        rows.append(row if name == row.name else dataclasses.replace(row, name=name))
    return dataclasses.replace(manifest, rows=tuple(rows))


def _write(path: Path, names: dict[str, str]) -> None:
    text = json.dumps({"version": _VERSION, "names": dict(sorted(names.items()))}, indent=1)
    try:
        atomic_write_text(path, text + "\n", fsync=False)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc}") from None


def keep_earlier_names(manifest: Manifest, out: str | Path) -> Manifest:
    """Give each row without a ``name`` cell the folder an earlier batch gave it.

    The names come from the record in ``out``, or, in an output folder written
    before the record existed, from the ``done.json`` of the videos finished there.
    A ``name`` cell always wins: a row whose earlier name is now another row's
    ``name`` keeps its generated name. A generated name that is now another row's
    earlier name takes a suffix made from the row. The names used are then added to
    the record (rows of earlier manifests stay in it, so a row taken out and put back
    later finds its folder again); the file is replaced atomically.

    Parameters
    ----------
    manifest : Manifest
        A validated manifest.
    out : str or pathlib.Path
        The batch output folder (it exists). Call this while holding the folder's
        batch lock.

    Returns
    -------
    Manifest
        The manifest with the kept names (the same object when nothing changed).

    Raises
    ------
    StoreError
        If the record cannot be written.
    """
    out = Path(out)
    record = _read_record(out / NAMES_FILE)
    earlier = _earlier(manifest, record, out)
    if earlier:
        manifest = _keep(manifest, earlier)
    base = manifest.path.parent
    names = dict(record or {})
    names.update({_row_key(row, base): row.name for row in manifest})
    if names != record:
        _write(out / NAMES_FILE, names)
    return manifest
