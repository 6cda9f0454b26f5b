"""The combined tables of a batch: every finished video's rows, in one set of units.

Each video is measured in its own calibration (one manifest row in mm and seconds,
another in um and minutes, a third with no calibration at all). Stacking such tables
would put 1.4e-3 and 1.4e+9 in one ``area`` column. So every physical column is
converted to the units most of the videos use (``target_units``), and every row says
its units in ``length_unit`` and ``time_unit``. A video whose units cannot be converted
(pixels beside micrometres, frames beside seconds) keeps its own values, named by
those columns, and the run's report lists it.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from napari_sam2v._files import restore_formula
from napari_sam2v.analysis.export import sanitise_table
from napari_sam2v.analysis.measurements import SIDECAR_NAME, column_units
from napari_sam2v.batch.tasks import VideoOutcome
from napari_sam2v.types import Calibration, convert_unit

__all__ = ["CombinedTables", "combine_tables", "read_video_table", "target_units"]

#: The workbook ``Measurements.save(format="xlsx")`` writes, one sheet per table.
TABLES_XLSX = "measurements.xlsx"
#: Columns added after ``video``: the units of the row's physical columns.
UNIT_COLUMNS = ("length_unit", "time_unit")


@dataclass
class CombinedTables:
    """What :func:`combine_tables` wrote.

    Parameters
    ----------
    files : dict of str to str
        ``"<kind>.<format>" -> path`` of each file written.
    units : tuple of str or None
        ``(length unit, time unit)`` of the combined physical columns; None when no
        video's calibration is known.
    unconverted : list of str
        Videos whose units could not all be converted to ``units``; on the axis
        that cannot (pixels, frames) their rows keep their own unit, named in
        ``length_unit`` or ``time_unit``, and the other axis is converted.
    problems : dict of str to str
        Finished videos left out, by name, with the reason (a table missing or
        unreadable).
    """

    files: dict[str, str] = field(default_factory=dict)
    units: tuple[str, str] | None = None
    unconverted: list[str] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)


def read_video_table(tables_dir: str | Path, kind: str) -> pd.DataFrame | None:
    """Read one per-video table written by ``Measurements.save`` (any format).

    Text read from CSV or Excel gets its formula guard taken off again (``'=x`` is
    ``=x``), so every format gives the names as the user wrote them.

    Parameters
    ----------
    tables_dir : str or pathlib.Path
        A video's ``tables`` folder.
    kind : str
        ``"frames"``, ``"tracks"`` or ``"msd"``.

    Returns
    -------
    pandas.DataFrame or None
        ``None`` when the folder has no such table.
    """
    path = _table_file(Path(tables_dir), kind)
    if path is None:
        return None
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        table = pd.read_csv(path)
    else:
        table = pd.read_excel(path, sheet_name=None).get(kind)
        if table is None:
            return None
    for col in table.columns:
        if table[col].dtype == object or pd.api.types.is_string_dtype(table[col].dtype):
            table[col] = table[col].map(restore_formula)
    return table


def _sidecar(tables_dir: Path) -> dict[str, Any]:
    try:
        sidecar = json.loads((tables_dir / SIDECAR_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return sidecar if isinstance(sidecar, dict) else {}


def _table_file(folder: Path, kind: str) -> Path | None:
    """The file of one table from the latest save: the one its sidecar lists.

    A folder measured again in another format also holds the earlier format's files;
    those are stale. Without a sidecar, the newest file wins.
    """
    found = [
        p
        for p in (folder / f"{kind}.parquet", folder / f"{kind}.csv", folder / TABLES_XLSX)
        if p.is_file()
    ]
    listed = set(_sidecar(folder).get("files") or ())
    current = [p for p in found if p.name in listed]
    if current:
        return current[0]
    return max(found, key=lambda p: p.stat().st_mtime_ns, default=None)


def _calibration(tables_dir: str | Path) -> Calibration | None:
    """The calibration a video's tables were measured with (from their sidecar)."""
    try:
        return Calibration.from_dict(_sidecar(Path(tables_dir))["calibration"])
    except (ValueError, KeyError, TypeError):
        return None


def target_units(calibrations: Iterable[Calibration | None]) -> tuple[str, str] | None:
    """The length and time units most of the calibrated videos use (the first on a tie).

    Only videos calibrated on an axis vote for its unit, so the one video with a pixel
    size among uncalibrated ones sets the length unit (the others, in pixels, cannot
    be converted and are the ones named). With none calibrated, pixels and frames.
    """
    known = [c for c in calibrations if c is not None]
    if not known:
        return None
    sized = [c.unit for c in known if c.pixel_size is not None] or [c.unit for c in known]
    timed = [c.time_unit for c in known if c.frame_interval is not None] or [
        c.time_unit for c in known
    ]
    return Counter(sized).most_common(1)[0][0], Counter(timed).most_common(1)[0][0]


def _factors(
    kind: str, source: Calibration, target: Calibration
) -> tuple[dict[str, float], bool, bool]:
    """Factor per physical column from ``source`` to ``target`` units, axis by axis.

    Returns the factors and whether lengths and times convert. An axis that does not
    (pixels, frames) keeps its own unit, and only the other axis is converted: a
    speed in px/min becomes px/s, never a mix of two units in one column.
    """
    length = 1.0 if source.unit == target.unit else convert_unit(1.0, source.unit, target.unit)
    time = (
        1.0
        if source.time_unit == target.time_unit
        else convert_unit(1.0, source.time_unit, target.time_unit)
    )
    src = column_units(source).get(kind, {})
    # Each unit below is how column_units writes a dimension for this calibration.
    powers = {
        source.unit: (1, 0),
        f"{source.unit}^2": (2, 0),
        f"{source.unit}/{source.time_unit}": (1, -1),
        source.time_unit: (0, 1),
        f"rad/{source.time_unit}": (0, -1),
    }
    factors: dict[str, float] = {}
    for column, unit in src.items():
        if column in ("frame", "lag_frames", "first_frame", "last_frame") or unit not in powers:
            continue  # frame indices, pixels, counts and ratios need no conversion
        p_length, p_time = powers[unit]
        factors[column] = (length or 1.0) ** p_length * (time or 1.0) ** p_time
    return factors, length is not None, time is not None


def _in_units(
    table: pd.DataFrame, kind: str, source: Calibration | None, target: tuple[str, str] | None
) -> tuple[pd.DataFrame, tuple[str, str], bool]:
    """The table in the target units where possible: (table, its units, fully converted)."""
    if source is None:
        return table, ("", ""), target is None
    own = (source.unit, source.time_unit)
    if target is None or own == target:
        return table, own, True
    goal = Calibration(pixel_size=1.0, unit=target[0], frame_interval=1.0, time_unit=target[1])
    factors, length_ok, time_ok = _factors(kind, source, goal)
    table = table.copy()
    for column, factor in factors.items():
        if column in table.columns and factor != 1.0:
            table[column] = table[column] * factor
    units = (target[0] if length_ok else own[0], target[1] if time_ok else own[1])
    return table, units, length_ok and time_ok


def combine_tables(
    outcomes: Iterable[VideoOutcome],
    out: str | Path,
    *,
    kinds: tuple[str, ...] = ("tracks", "frames"),
) -> CombinedTables:
    """Concatenate the per-video tables of finished videos, in one set of units.

    Every row gets the video's name (``video``) and the units of its physical
    columns (``length_unit``, ``time_unit``). The columns are converted to the units
    most videos use (:func:`target_units`); a video whose units cannot be converted
    to them (no calibration, or pixels beside a length) keeps its own, which its
    ``length_unit`` and ``time_unit`` say. Text is guarded against spreadsheet
    formulas in the CSV file and kept as written in the Parquet file.

    Parameters
    ----------
    outcomes : iterable of VideoOutcome
        Outcomes of the batch; ``done`` and ``skipped`` videos are combined.
    out : str or pathlib.Path
        Batch output folder; ``batch_<kind>.parquet`` and ``batch_<kind>.csv``
        are written there.
    kinds : tuple of str, optional
        Which tables to combine.

    Returns
    -------
    CombinedTables

    Raises
    ------
    OSError
        If a combined table cannot be written (a full disk). A video whose own table
        is missing or unreadable is left out and named in ``problems`` instead.
    """
    out = Path(out)
    written: dict[str, str] = {}
    finished = [o for o in outcomes if o.status in ("done", "skipped")]
    tables, problems = _read_tables(finished, kinds)
    finished = [o for o in finished if o.name not in problems]
    calibrations = {o.name: _calibration(o.tables) for o in finished}
    target = target_units(calibrations.values())
    unconverted: set[str] = set()
    for kind in kinds:
        parts: list[pd.DataFrame] = []
        for outcome in finished:
            source = calibrations[outcome.name]
            table, units, converted = _in_units(tables[outcome.name, kind], kind, source, target)
            if not converted:
                unconverted.add(outcome.name)
            table.insert(0, "video", outcome.name)
            table.insert(1, UNIT_COLUMNS[0], units[0])
            table.insert(2, UNIT_COLUMNS[1], units[1])
            parts.append(table)
        for suffix in (".parquet", ".csv"):
            path = out / f"batch_{kind}{suffix}"
            if parts:
                _write_atomic(pd.concat(parts, ignore_index=True, sort=False), path)
                written[f"{kind}{suffix}"] = str(path)
            else:
                path.unlink(missing_ok=True)  # an earlier run's, of videos not finished now
    return CombinedTables(written, target if written else None, sorted(unconverted), problems)


def _read_tables(
    finished: list[VideoOutcome], kinds: tuple[str, ...]
) -> tuple[dict[tuple[str, str], pd.DataFrame], dict[str, str]]:
    """Every table of every finished video; a video with one missing or unreadable is out."""
    tables: dict[tuple[str, str], pd.DataFrame] = {}
    problems: dict[str, str] = {}
    for outcome in finished:
        for kind in kinds:
            try:
                table = read_video_table(outcome.tables, kind)
            except (OSError, ValueError, KeyError) as exc:
                problems[outcome.name] = f"its {kind} table cannot be read ({exc})"
                break
            if table is None:
                problems[outcome.name] = f"its {kind} table is missing from {outcome.tables}"
                break
            tables[outcome.name, kind] = table
    for name, problem in problems.items():
        problems[name] = (
            f"{problem}; left out of the combined tables: re-run with --remeasure "
            "(remeasure=True) to write its tables again"
        )
    return tables, problems


def _write_atomic(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    else:
        sanitise_table(frame).to_csv(tmp, index=False)
    os.replace(tmp, path)
