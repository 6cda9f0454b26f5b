"""Prompt files: the versioned JSON format (v1) and CSV click tables.

JSON v1 (see ``docs/formats.md``)::

    {"version": 1,
     "objects": [{"id": 1, "name": "parrotfish", "color": "#ff8800"}],
     "prompts": [
       {"frame": 0, "object": 1, "points": [[x, y], [x, y]], "labels": [1, 0]},
       {"frame": 40, "object": 1, "box": [x0, y0, x1, y1]},
       {"frame": 9, "object": 2, "mask": {"size": [h, w], "counts": [...]}}]}

CSV: a header ``frame,object,x,y,label`` (``label`` optional, default 1; an optional
``name`` column names objects). Rows of the same frame and object form one prompt.
Coordinates are pixels of the original frame: x is the column, y the row.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from napari_sam2v._files import (
    atomic_write_text,
    csv_delimiter,
    decimal_number,
    neutralise_formula,
    read_spreadsheet_text,
    restore_formula,
)
from napari_sam2v.errors import InputFileNotFoundError, PromptError
from napari_sam2v.io._prompt_checks import merged_prompts, warn_background_only
from napari_sam2v.io.rle import rle_decode, rle_encode
from napari_sam2v.prompts import Prompt, PromptSet
from napari_sam2v.types import ObjectInfo

__all__ = ["PROMPT_FILE_VERSION", "Prompts"]

#: Version written by :meth:`Prompts.to_json_dict`; newer versions are refused.
PROMPT_FILE_VERSION = 1

_TOP_KEYS = {"version", "objects", "prompts", "metadata"}
_OBJECT_KEYS = {"id", "name", "color"}
_PROMPT_KEYS = {"frame", "object", "points", "labels", "box", "mask"}


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _number_list(value: Any, where: str, what: str) -> list[float]:
    if not isinstance(value, list):
        raise PromptError(f"{where}: {what} must be a list of numbers")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise PromptError(f"{where}: {what} must hold finite numbers, got {v!r}")
    return [float(v) for v in value]


def _parse_object(entry: Any, where: str) -> ObjectInfo:
    if not isinstance(entry, dict):
        raise PromptError(f'{where}: must be an object like {{"id": 1, "name": ...}}')
    unknown = set(entry) - _OBJECT_KEYS
    if unknown:
        raise PromptError(f"{where}: unknown keys {sorted(unknown)}")
    oid = entry.get("id")
    if not _is_int(oid) or oid < 1:
        raise PromptError(f"{where}: id must be a positive integer, got {oid!r}")
    name, color = entry.get("name", ""), entry.get("color", "")
    if not isinstance(name, str) or not isinstance(color, str):
        raise PromptError(f"{where}: name and color must be strings")
    try:
        return ObjectInfo(oid, name, color)
    except ValueError as exc:
        raise PromptError(f"{where}: {exc}") from None


def _parse_prompt(entry: Any, where: str) -> Prompt:
    if not isinstance(entry, dict):
        raise PromptError(f"{where}: must be an object with frame, object and points/box/mask")
    unknown = set(entry) - _PROMPT_KEYS
    if unknown:
        raise PromptError(f"{where}: unknown keys {sorted(unknown)}")
    frame, oid = entry.get("frame"), entry.get("object")
    if not _is_int(frame) or frame < 0:
        raise PromptError(f"{where}: frame must be an integer >= 0, got {frame!r}")
    if not _is_int(oid) or oid < 1:
        raise PromptError(f"{where}: object must be a positive integer id, got {oid!r}")
    points = labels = box = mask = None
    if "points" in entry:
        raw = entry["points"]
        if not isinstance(raw, list) or not all(isinstance(p, list) and len(p) == 2 for p in raw):
            raise PromptError(f"{where}: points must be a list of [x, y] pairs")
        points = [_number_list(p, where, "points") for p in raw]
        if any(x < 0 or y < 0 for x, y in points):
            raise PromptError(f"{where}: points must not have negative coordinates")
    if "labels" in entry:
        raw = entry["labels"]
        if not isinstance(raw, list) or not all(_is_int(v) and v in (0, 1) for v in raw):
            raise PromptError(f"{where}: labels must be 0 or 1 (background/foreground)")
        labels = raw
        if points is None:
            raise PromptError(f"{where}: labels given without points")
        if len(labels) != len(points):
            raise PromptError(f"{where}: {len(points)} points but {len(labels)} labels")
    if "box" in entry:
        box = _number_list(entry["box"], where, "box")
        if len(box) != 4:
            raise PromptError(f"{where}: box must be [x0, y0, x1, y1]")
        if min(box) < 0:
            raise PromptError(f"{where}: box must not have negative coordinates")
    if "mask" in entry:
        try:
            mask = rle_decode(entry["mask"]) if isinstance(entry["mask"], dict) else None
        except ValueError as exc:
            raise PromptError(f"{where}: mask: {exc}") from None
        if mask is None:
            raise PromptError(f'{where}: mask must be RLE {{"size": [h, w], "counts": [..]}}')
    try:
        return Prompt(frame, oid, points=points, labels=labels, box=box, mask=mask)
    except PromptError as exc:
        raise PromptError(f"{where}: {exc}") from None


def _prompt_to_dict(prompt: Prompt) -> dict[str, Any]:
    out: dict[str, Any] = {"frame": prompt.frame, "object": prompt.object_id}
    points, labels = prompt.clicks
    if len(points):
        out["points"] = [[_num(x), _num(y)] for x, y in points.tolist()]
        out["labels"] = [int(v) for v in labels.tolist()]
    if prompt.box is not None:
        out["box"] = [_num(v) for v in prompt.box.tolist()]
    if prompt.mask is not None:
        out["mask"] = rle_encode(prompt.mask)
    return out


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


class Prompts(PromptSet):
    """A :class:`~napari_sam2v.prompts.PromptSet` that reads and writes prompt files.

    Parameters
    ----------
    objects : list of ObjectInfo
        Objects with unique ids.
    prompts : list of Prompt
        Prompts in the order they were given.

    Examples
    --------
    >>> p = Prompts.from_json_dict(
    ...     {"version": 1, "prompts": [{"frame": 0, "object": 1, "points": [[5, 6]]}]})
    >>> p.object_ids, p.to_json_dict()["prompts"][0]["labels"]
    ([1], [1])
    """

    @classmethod
    def from_prompt_set(cls, prompts: PromptSet) -> Prompts:
        """Wrap any :class:`PromptSet` (returned unchanged if already ``Prompts``)."""
        if isinstance(prompts, Prompts):
            return prompts
        return cls(list(prompts.objects), list(prompts.prompts))

    # -- JSON ----------------------------------------------------------------------
    @classmethod
    def from_json_dict(
        cls, data: Any, *, source: str = "prompt file", allow_empty: bool = False
    ) -> Prompts:
        """Build from the JSON v1 dictionary, validating every entry.

        Parameters
        ----------
        data : dict
            Parsed JSON.
        source : str
            Name used in error messages (the file path).
        allow_empty : bool
            Accept an empty prompt list (objects without prompts yet, as an
            interactive session stores them). Prompt files for tracking need prompts.

        Entries for the same object and frame are merged into one prompt (their
        clicks together) with a ``UserWarning``; a prompt of background clicks only
        also warns, as its object is empty on that frame.

        Raises
        ------
        PromptError
            Naming the offending entry, e.g. ``"prompts[3]: labels must be 0 or 1"``,
            or entries for the same object and frame that cannot be merged (two
            different boxes, a mask with another prompt).
        """
        if not isinstance(data, dict):
            raise PromptError(f"{source}: the top level must be a JSON object")
        version = data.get("version")
        if not _is_int(version):
            raise PromptError(f"{source}: missing or invalid 'version' (expected 1)")
        if version > PROMPT_FILE_VERSION or version < 1:
            raise PromptError(
                f"{source}: prompt file version {version} is not supported (this napari-sam2v "
                f"reads version {PROMPT_FILE_VERSION}); update napari-sam2v"
            )
        unknown = set(data) - _TOP_KEYS
        if unknown:
            raise PromptError(f"{source}: unknown top-level keys {sorted(unknown)}")
        raw_objects = data.get("objects", [])
        raw_prompts = data.get("prompts")
        if not isinstance(raw_objects, list):
            raise PromptError(f"{source}: 'objects' must be a list")
        if not isinstance(raw_prompts, list):
            raise PromptError(f"{source}: 'prompts' must be a list")
        if not raw_prompts and not allow_empty:
            raise PromptError(f"{source}: the prompt list is empty")
        objects: list[ObjectInfo] = []
        seen: dict[int, int] = {}
        for i, entry in enumerate(raw_objects):
            obj = _parse_object(entry, f"{source}: objects[{i}]")
            if obj.id in seen:
                raise PromptError(
                    f"{source}: objects[{i}]: duplicate object id {obj.id} "
                    f"(also objects[{seen[obj.id]}])"
                )
            seen[obj.id] = i
            objects.append(obj)
        prompts = [
            _parse_prompt(entry, f"{source}: prompts[{i}]") for i, entry in enumerate(raw_prompts)
        ]
        prompts = merged_prompts(prompts, [f"prompts[{i}]" for i in range(len(prompts))], source)
        warn_background_only(prompts, source)
        return cls(objects, prompts)

    def to_json_dict(self) -> dict[str, Any]:
        """Serialise to the JSON v1 dictionary (masks as uncompressed RLE)."""
        return {
            "version": PROMPT_FILE_VERSION,
            "objects": [{"id": o.id, "name": o.name, "color": o.color} for o in self.objects],
            "prompts": [_prompt_to_dict(p) for p in self.prompts],
        }

    # -- CSV -----------------------------------------------------------------------
    @classmethod
    def from_csv(cls, path: str | os.PathLike[str]) -> Prompts:
        """Read a CSV of clicks with columns ``frame,object,x,y[,label][,name]``.

        Raises
        ------
        PromptError
            Naming the file and line of the first bad row.
        """
        path = Path(path)
        text = _read_text(path, spreadsheet=True)
        return cls._from_csv_text(text, str(path))

    @classmethod
    def _from_csv_text(cls, text: str, source: str) -> Prompts:
        try:
            return cls._parse_csv(text, source)
        except csv.Error as exc:
            raise PromptError(f"{source}: malformed CSV ({exc})") from None

    @classmethod
    def _parse_csv(cls, text: str, source: str) -> Prompts:
        delimiter = csv_delimiter(text)  # ';' and 0,5 from spreadsheets in many locales
        reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
        fields = [f.strip().lower() for f in (reader.fieldnames or [])]
        missing = {"frame", "object", "x", "y"} - set(fields)
        if missing:
            raise PromptError(
                f"{source}: the CSV header must contain frame,object,x,y[,label]; "
                f"missing {sorted(missing)}"
            )
        reader.fieldnames = fields
        groups: dict[tuple[int, int], tuple[list[list[float]], list[int]]] = {}
        names: dict[int, str] = {}
        for row in reader:
            line = reader.line_num
            where = f"{source}: line {line}"
            if None in row:
                raise PromptError(f"{where}: more values than header columns")
            try:
                frame, oid = int(row["frame"]), int(row["object"])
                x = float(decimal_number(row["x"], delimiter))
                y = float(decimal_number(row["y"], delimiter))
                label = int(row["label"]) if row.get("label") not in (None, "") else 1
            except (TypeError, ValueError):
                raise PromptError(
                    f"{where}: frame/object/label must be integers and x/y numbers"
                ) from None
            if frame < 0 or oid < 1:
                raise PromptError(f"{where}: frame must be >= 0 and object a positive id")
            if not (np.isfinite(x) and np.isfinite(y)) or x < 0 or y < 0:
                raise PromptError(f"{where}: x and y must be finite and >= 0")
            if label not in (0, 1):
                raise PromptError(f"{where}: label must be 0 or 1, got {label}")
            # a name saved with its formula guard ('=x) reads back as written (=x)
            name = restore_formula((row.get("name") or "").strip(" ")).strip()
            if name:
                if names.setdefault(oid, name) != name:
                    raise PromptError(f"{where}: object {oid} has two names")
            pts, lbl = groups.setdefault((frame, oid), ([], []))
            pts.append([x, y])
            lbl.append(label)
        if not groups:
            raise PromptError(f"{source}: the CSV has no clicks (the prompt list is empty)")
        objects = [ObjectInfo(oid, names.get(oid, "")) for oid in sorted({k[1] for k in groups})]
        prompts = [
            Prompt(frame, oid, points=pts, labels=lbl)
            for (frame, oid), (pts, lbl) in groups.items()
        ]
        warn_background_only(prompts, source)
        return cls(objects, prompts)

    def to_csv_text(self) -> str:
        """CSV of the point prompts (boxes and masks cannot be written as CSV).

        Raises
        ------
        PromptError
            If a prompt has a box or mask.
        """
        buf = io.StringIO()
        # CRLF (RFC 4180): names holding a carriage return are then quoted
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerow(["frame", "object", "x", "y", "label", "name"])
        for prompt in self.prompts:
            if prompt.box is not None or prompt.mask is not None:
                raise PromptError(
                    f"prompt (frame {prompt.frame}, object {prompt.object_id}) has a "
                    f"{prompt.kind}: save as JSON, CSV holds clicks only"
                )
            name = neutralise_formula(self.object(prompt.object_id).name)
            points, labels = prompt.clicks
            for (x, y), label in zip(points.tolist(), labels.tolist(), strict=True):
                writer.writerow([prompt.frame, prompt.object_id, _num(x), _num(y), label, name])
        return buf.getvalue()

    # -- files ---------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str], *, allow_empty: bool = False) -> Prompts:
        """Load a prompt file: JSON v1 (``.json``) or CSV clicks (``.csv``).

        Parameters
        ----------
        path : path-like
            The file.
        allow_empty : bool
            Accept a JSON file with an empty prompt list (see :meth:`from_json_dict`).

        Raises
        ------
        InputFileNotFoundError
            If the file does not exist.
        PromptError
            For malformed JSON/CSV or invalid entries (naming file and entry).
        """
        path = Path(path)
        if path.suffix.lower() == ".csv":
            return cls.from_csv(path)
        text = _read_text(path)
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise PromptError(f"{path}: malformed JSON ({exc})") from None
        except RecursionError:
            raise PromptError(f"{path}: malformed JSON (nested too deeply)") from None
        return cls.from_json_dict(data, source=str(path), allow_empty=allow_empty)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the prompts atomically: CSV for ``.csv`` paths, JSON v1 otherwise.

        Returns
        -------
        Path
            The written path.
        """
        path = Path(path)
        if path.suffix.lower() == ".csv":
            text = self.to_csv_text()
        else:
            text = json.dumps(self.to_json_dict(), indent=1) + "\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text, newline="")
        return path

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PromptSet):
            return NotImplemented
        return self.to_json_dict() == Prompts.from_prompt_set(other).to_json_dict()

    __hash__ = None  # type: ignore[assignment]


def _read_text(path: Path, *, spreadsheet: bool = False) -> str:
    """The prompt file's text: UTF-8, or Windows-1252 too for a CSV of clicks (Excel).

    JSON has one encoding, UTF-8; a CSV may have been saved by Excel on Windows.
    """
    if not path.is_file():
        raise InputFileNotFoundError(f"{path}: prompt file not found")
    try:
        if spreadsheet:
            return read_spreadsheet_text(path)
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        encodings = "UTF-8 or Windows-1252" if spreadsheet else "UTF-8"
        raise PromptError(f"{path}: not a {encodings} text file") from None
