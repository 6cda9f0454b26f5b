"""Writing measurement tables: CSV, Parquet, Excel, and their JSON sidecar.

Object names are free text typed by users, so every text cell written to CSV or
Excel is neutralised against formula injection (OWASP "CSV injection"): a value that
begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading
apostrophe, which spreadsheets show as text. Parquet keeps the raw values (it is not
opened by spreadsheets). File names are fixed (``frames.csv``, ...), never derived
from object names, so no name can write outside the output directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from napari_sam2v._files import neutralise_formula
from napari_sam2v.errors import ExportError

__all__ = ["FORMATS", "neutralise_formula", "sanitise_table", "write_sidecar", "write_tables"]

FORMATS = ("csv", "parquet", "xlsx")
_EXCEL_MAX_ROWS = 1_048_575  # one header row


def sanitise_table(table: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``table`` whose text columns are safe to open in a spreadsheet."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col].dtype):
            out[col] = out[col].map(neutralise_formula).astype(object)
    return out


def _excel_cells(table: pd.DataFrame) -> pd.DataFrame:
    """Sanitised table whose text holds no control characters (Excel refuses them).

    Characters that an ``.xlsx`` worksheet cannot store (NUL and the other C0 controls
    except tab, newline and carriage return) become U+FFFD.
    """
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    out = sanitise_table(table)
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].map(
                lambda v: ILLEGAL_CHARACTERS_RE.sub("\ufffd", v) if isinstance(v, str) else v
            )
    return out


def _check_dir(directory: Path) -> Path:
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{directory}: cannot create the output directory ({exc})") from exc
    if not os.access(directory, os.W_OK):
        raise ExportError(f"{directory}: output directory is not writable")
    return directory


def _atomic_target(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def write_tables(
    tables: Mapping[str, pd.DataFrame], directory: str | os.PathLike, *, format: str = "csv"
) -> list[Path]:
    """Write named tables into ``directory`` (one file per table, one workbook for xlsx).

    Each file is written to a temporary name and renamed into place, so an existing
    export is never left half-overwritten.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Table name (used as file or sheet name) to table.
    directory : path-like
        Output directory, created when missing.
    format : {'csv', 'parquet', 'xlsx'}
        File format.

    Returns
    -------
    list of Path
        Files written.

    Raises
    ------
    ExportError
        Unknown format, unwritable directory, or a table too long for Excel.
    """
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    out_dir = _check_dir(Path(directory))
    written: list[Path] = []
    try:
        if format == "xlsx":
            for name, table in tables.items():
                if len(table) > _EXCEL_MAX_ROWS:
                    raise ExportError(
                        f"{out_dir / 'measurements.xlsx'}: table {name!r} has {len(table)} rows, "
                        f"more than Excel's {_EXCEL_MAX_ROWS}; export as csv or parquet"
                    )
            target = out_dir / "measurements.xlsx"
            tmp = _atomic_target(target)
            with pd.ExcelWriter(tmp, engine="openpyxl") as writer:
                for name, table in tables.items():
                    _excel_cells(table).to_excel(writer, sheet_name=name, index=False)
            tmp.replace(target)
            written.append(target)
            return written
        for name, table in tables.items():
            target = out_dir / f"{name}.{format}"
            tmp = _atomic_target(target)
            if format == "csv":
                # CRLF (RFC 4180) makes pandas quote text holding a bare "\r", which
                # would otherwise split the row when read back
                sanitise_table(table).to_csv(tmp, index=False, lineterminator="\r\n")
            else:
                table.to_parquet(tmp, index=False)
            tmp.replace(target)
            written.append(target)
    except ExportError:
        raise
    except OSError as exc:
        raise ExportError(f"{out_dir}: cannot write {format} tables ({exc})") from exc
    return written


def write_sidecar(path: Path, payload: dict[str, Any]) -> Path:
    """Write the JSON sidecar atomically."""
    path = Path(path)
    _check_dir(path.parent)
    tmp = _atomic_target(path)
    try:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
        tmp.replace(path)
    except OSError as exc:
        raise ExportError(f"{path}: cannot write the sidecar ({exc})") from exc
    return path
