"""Batch manifests: one CSV row per video, validated before any work starts.

A manifest is a CSV file with a header row. Required columns are ``video`` and
``prompts``; optional columns are ``channel``, ``axes``, ``pixel_size``, ``unit``,
``frame_interval``, ``time_unit``, ``model`` and ``name``. Relative paths (also a
``model`` path) are resolved against the folder holding the manifest, so a manifest can travel with
its videos. Every problem is reported with the row number of the CSV file (the
header is row 1), all problems at once, so a user fixes the manifest in one go.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from napari_sam2v._files import csv_delimiter, decimal_number, read_spreadsheet_text
from napari_sam2v.errors import InputError, InputFileNotFoundError
from napari_sam2v.types import known_unit

__all__ = [
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "Manifest",
    "ManifestRow",
    "read_manifest",
    "safe_name",
]

#: Columns every manifest must have.
REQUIRED_COLUMNS: tuple[str, ...] = ("video", "prompts")
#: Columns a manifest may have; empty cells mean "use the batch default".
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "channel",
    "axes",
    "pixel_size",
    "unit",
    "frame_interval",
    "time_unit",
    "model",
    "name",
)

_MAX_LISTED_PROBLEMS = 8
_UNSAFE = re.compile(r"[^\w.-]+")


def safe_name(text: str) -> str:
    """Turn free text into a file-system-safe folder name.

    Only letters (of any script: ``Récif`` stays ``Récif``), digits, ``.``, ``_``
    and ``-`` are kept (runs of anything else become ``_``); leading dots, dashes and
    underscores are dropped, so the name can be neither hidden, nor an option, nor
    climb out of the output folder.

    Parameters
    ----------
    text : str
        Any text, e.g. a video file stem.

    Returns
    -------
    str
        A non-empty name (``"video"`` when nothing usable is left).
    """
    name = _UNSAFE.sub("_", unicodedata.normalize("NFC", text)).lstrip("._-").rstrip("_")
    return name[:120] or "video"


@dataclass(frozen=True)
class ManifestRow:
    """One video of a batch.

    Parameters
    ----------
    row : int
        Row number in the CSV file (the header is row 1).
    name : str
        Unique, file-system-safe name of the video's output folder.
    video : pathlib.Path
        Absolute path of the video.
    prompts : pathlib.Path
        Absolute path of its prompt file (JSON v1 or CSV clicks).
    channel : int or None
        Channel of multi-channel data.
    axes : str or None
        Axis order of a video that does not name its axes (``"TCYX"``, ...; see
        :func:`~napari_sam2v.io.open_video`).
    pixel_size : float or None
        Pixel edge length in ``unit``; ``None`` keeps the video's own metadata.
    unit : str or None
        Length unit of ``pixel_size``.
    frame_interval : float or None
        Time between frames in ``time_unit``.
    time_unit : str or None
        Unit of ``frame_interval`` (seconds when ``frame_interval`` is set alone).
    model : str or None
        Model name or path overriding the batch's model for this video.
    generated : bool
        Whether ``name`` was made from the row's paths (no ``name`` cell), so that
        :func:`~napari_sam2v.batch.names.keep_earlier_names` may give the row the
        folder an earlier batch gave it instead.
    """

    row: int
    name: str
    video: Path
    prompts: Path
    channel: int | None = None
    axes: str | None = None
    pixel_size: float | None = None
    unit: str | None = None
    frame_interval: float | None = None
    time_unit: str | None = None
    model: str | None = None
    generated: bool = False


@dataclass(frozen=True)
class Manifest:
    """A validated manifest.

    Parameters
    ----------
    path : pathlib.Path
        The manifest file.
    rows : tuple of ManifestRow
        The videos, in file order.
    """

    path: Path
    rows: tuple[ManifestRow, ...]

    def __iter__(self) -> Iterator[ManifestRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


#: Columns that hold numbers (a decimal comma is read in ';'- or tab-separated files).
_NUMBER_COLUMNS = ("pixel_size", "frame_interval")


def _listed(problems: Sequence[str]) -> str:
    listed = "; ".join(problems[:_MAX_LISTED_PROBLEMS])
    more = len(problems) - _MAX_LISTED_PROBLEMS
    return listed + (f"; and {more} more" if more > 0 else "")


def _positive_float(value: str, column: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"column '{column}' must be a number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"column '{column}' must be a positive finite number, got {value!r}")
    return number


def _channel(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"column 'channel' must be an integer >= 0, got {value!r}") from None
    if number < 0:
        raise ValueError(f"column 'channel' must be an integer >= 0, got {value!r}")
    return number


def _axes(value: str) -> str:
    from napari_sam2v.io._axes import check_axes

    try:
        return check_axes(value, "column 'axes'")
    except InputError as exc:
        raise ValueError(str(exc)) from None


def _resolve(value: str, base: Path, column: str, check_files: bool) -> Path:
    if not value:
        raise ValueError(f"column '{column}' is empty")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base / path
    path = path.resolve()
    if check_files and not path.exists():
        raise ValueError(f"{column} {value!r} does not exist (looked for {path})")
    return path


def _model_cell(value: str, base: Path) -> str:
    """A model name as written, or a model path resolved like the other paths."""
    from napari_sam2v.engines.sam2.registry import looks_like_path

    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base / path
    return str(path.resolve()) if path.exists() or looks_like_path(value) else value


def _parse_row(
    number: int, record: dict[str, str], base: Path, check_files: bool
) -> tuple[dict[str, object], list[str]]:
    problems: list[str] = []
    fields: dict[str, object] = {"row": number}
    for column in REQUIRED_COLUMNS:
        try:
            fields[column] = _resolve(record.get(column, ""), base, column, check_files)
        except ValueError as exc:
            problems.append(str(exc))
    parsers = {
        "channel": _channel,
        "axes": _axes,
        "pixel_size": lambda v: _positive_float(v, "pixel_size"),
        "frame_interval": lambda v: _positive_float(v, "frame_interval"),
    }
    for column, parse in parsers.items():
        value = record.get(column, "")
        if value:
            try:
                fields[column] = parse(value)
            except ValueError as exc:
                problems.append(str(exc))
    for column in ("unit", "time_unit"):
        value = record.get(column, "")
        if value:
            try:
                fields[column] = known_unit(value, time=column == "time_unit")
            except InputError as exc:
                problems.append(f"column '{column}': {exc}")
    if record.get("model"):
        fields["model"] = _model_cell(record["model"], base)
    if record.get("name"):
        fields["name"] = record["name"]
    # a unit needs its value; a value that is there but wrong has its own problem above
    if "unit" in fields and not record.get("pixel_size"):
        problems.append("column 'unit' is set but 'pixel_size' is empty")
    if "time_unit" in fields and not record.get("frame_interval"):
        problems.append("column 'time_unit' is set but 'frame_interval' is empty")
    return fields, problems


def _stem(fields: dict[str, object]) -> str:
    return safe_name(Path(str(fields["video"])).stem)


def _parents(video: Path, others: Sequence[Path]) -> str:
    """The fewest parent folders of ``video`` that no other video shares."""
    parts = video.parent.parts
    for depth in range(1, len(parts) + 1):
        if all(other.parent.parts[-depth:] != parts[-depth:] for other in others):
            return "_".join(parts[-depth:])
    return "_".join(parts)


def _row_digest(fields: dict[str, object]) -> str:
    text = repr(sorted((k, str(v)) for k, v in fields.items() if k != "row"))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def _generated_name(
    index: int, parsed: Sequence[dict[str, object]], taken: set[str], explicit: set[str]
) -> str:
    """Output name of a row without a ``name``: its video's stem, made unique.

    Rows whose videos share a stem (GoPro's ``GX010001.MP4`` in per-site folders)
    take the fewest parent folders that tell them apart (``siteA_GX010001``); rows of
    one video take their prompt file's stem, then their channel. A name depends only
    on the rows sharing its stem, never on row positions. Adding a row that shares
    the stem changes the name; :func:`~napari_sam2v.batch.names.keep_earlier_names`
    then gives the earlier row its earlier folder.
    """
    fields = parsed[index]
    stem, video = _stem(fields), Path(str(fields["video"]))
    alike = [f for i, f in enumerate(parsed) if i != index and _stem(f).lower() == stem.lower()]
    if not alike and stem.lower() not in explicit:
        return stem
    videos = [Path(str(f["video"])) for f in alike if Path(str(f["video"])) != video]
    name = safe_name(f"{_parents(video, videos)}_{stem}") if videos or not alike else stem
    same = [f for f in alike if Path(str(f["video"])) == video]
    if same:
        prompts = Path(str(fields["prompts"])).stem
        if all(Path(str(f["prompts"])).stem != prompts for f in same):
            name = safe_name(f"{name}-{prompts}")
        elif all(f.get("channel") != fields.get("channel") for f in same):
            name = f"{name}-c{fields.get('channel')}"
        else:
            name = f"{name}-{_row_digest(fields)}"
    if name.lower() in taken:
        name = f"{name}-{_row_digest(fields)}"
    return name


def _assign_names(parsed: Sequence[dict[str, object]]) -> tuple[list[str], list[str]]:
    """Unique output names, stable for a given set of rows, and naming problems."""
    explicit = [safe_name(str(f["name"])) if "name" in f else None for f in parsed]
    explicit_set = {n.lower() for n in explicit if n is not None}
    names: list[str] = []
    taken: set[str] = set()
    for index, given in enumerate(explicit):
        name = given or _generated_name(index, parsed, taken | explicit_set, explicit_set)
        names.append(name)
        taken.add(name.lower())
    problems = []
    first: dict[str, int] = {}
    for name, fields in zip(names, parsed, strict=True):
        row = int(str(fields["row"]))
        if name.lower() in first:
            problems.append(
                f"row {row}: output name {name!r} is also row {first[name.lower()]}'s; "
                "two videos cannot share one output folder: give one a different 'name'"
            )
        else:
            first[name.lower()] = row
    return names, problems


def _repeated_rows(parsed: Sequence[dict[str, object]]) -> list[str]:
    """Rows that repeat an earlier row exactly (they would track one video twice)."""
    seen: dict[tuple[tuple[str, str], ...], int] = {}
    problems = []
    for fields in parsed:
        key = tuple(sorted((k, str(v)) for k, v in fields.items() if k != "row"))
        row = int(str(fields["row"]))
        if key in seen:
            problems.append(f"row {row} repeats row {seen[key]}: remove one")
        else:
            seen[key] = row
    return problems


def read_manifest(path: str | Path, *, check_files: bool = True) -> Manifest:
    """Read and validate a batch manifest.

    Parameters
    ----------
    path : str or pathlib.Path
        CSV file with a header row (see the module docstring for the columns).
    check_files : bool, optional
        Check that every video and prompt file exists (default). Disable only
        when the files live on a file system that only the workers can see.

    Returns
    -------
    Manifest

    Raises
    ------
    InputFileNotFoundError
        If the manifest does not exist.
    InputError
        If the manifest is empty, lacks a required column, has an unknown column,
        or has invalid rows; the message lists the problems with row numbers.

    Examples
    --------
    A manifest next to its videos::

        video,prompts,pixel_size,unit,frame_interval
        transect_01.mp4,transect_01.json,0.5,mm,0.04
        transect_02.mp4,transect_02.json,,,

    >>> manifest = read_manifest("surveys/manifest.csv")  # doctest: +SKIP
    >>> [row.name for row in manifest]  # doctest: +SKIP
    ['transect_01', 'transect_02']
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputFileNotFoundError(f"manifest {path} does not exist")
    base = path.resolve().parent
    try:
        text = read_spreadsheet_text(path)
        delimiter = csv_delimiter(text)  # ';' and 0,5 from spreadsheets in many locales
        reader = csv.reader(io.StringIO(text), delimiter=delimiter, skipinitialspace=True)
        lines = [(reader.line_num, cells) for cells in reader]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(
            f"manifest {path}: not a readable CSV file (UTF-8 or Windows-1252; {exc})"
        ) from None
    lines = [(n, cells) for n, cells in lines if any(c.strip() for c in cells)]
    if not lines:
        raise InputError(f"manifest {path} is empty: it needs a header row 'video,prompts'")
    header = [cell.strip() for cell in lines[0][1]]
    while header and not header[-1]:
        header.pop()  # a trailing separator, as some spreadsheets write
    if "" in header:
        raise InputError(
            f"manifest {path}: header column {header.index('') + 1} has no name; "
            f"columns are {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InputError(
            f"manifest {path}: missing required column(s) {', '.join(missing)} "
            f"(found: {', '.join(header)})"
        )
    unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise InputError(
            f"manifest {path}: unknown column(s) {', '.join(repr(c) for c in unknown)}; "
            f"allowed are {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}"
        )
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise InputError(f"manifest {path}: duplicated column(s) {', '.join(duplicated)}")
    parsed: list[dict[str, object]] = []
    clean: list[dict[str, object]] = []  # the rows without a problem of their own
    problems: list[str] = []
    for number, cells in lines[1:]:
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
            problems.append(
                f"row {number}: {len(cells)} cells but the header has {len(header)} columns"
            )
            continue
        record = {column: cell.strip() for column, cell in zip(header, cells, strict=False)}
        for column in _NUMBER_COLUMNS:
            if column in record:
                record[column] = decimal_number(record[column], delimiter)
        fields, row_problems = _parse_row(number, record, base, check_files)
        problems += [f"row {number}: {p}" for p in row_problems]
        parsed.append(fields)
        if not row_problems:
            clean.append(fields)
    if not parsed and not problems:
        raise InputError(f"manifest {path} has a header but no video rows")
    # rows that clash (same output name, or repeated) are listed with the rows' own
    # problems, so one run of the check names them all
    names, clashes = _assign_names(clean)
    problems += _repeated_rows(clean) + clashes
    if problems:
        raise InputError(f"manifest {path}: {_listed(problems)}")
    rows = tuple(
        ManifestRow(**{**fields, "name": name, "generated": "name" not in fields})  # type: ignore[arg-type]
        for name, fields in zip(names, parsed, strict=True)
    )
    return Manifest(path=path.resolve(), rows=rows)
