"""Small file-safety helpers shared by the core layers (Qt-free).

* :func:`atomic_write_text` / :func:`atomic_write_json`: write through a temporary
  file in the same folder and ``os.replace``, so a crash never leaves a half file;
* :func:`neutralise_formula`: free text (object names) that a spreadsheet would run
  as a formula gets a leading ``'`` (CSV/Excel formula injection);
  :func:`restore_formula` takes it off again when such a file is read back;
* :func:`csv_delimiter` / :func:`decimal_number`: read CSV files as spreadsheets in
  locales with a decimal comma write them (``;`` between values, ``0,5``);
* :func:`read_spreadsheet_text`: the text of a CSV file in UTF-8 or, as Excel on
  Windows saves "CSV (comma delimited)", Windows-1252.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, overload

__all__ = [
    "FORMULA_PREFIXES",
    "atomic_write_json",
    "atomic_write_text",
    "csv_delimiter",
    "decimal_number",
    "neutralise_formula",
    "read_spreadsheet_text",
    "restore_formula",
]

#: First characters that make spreadsheets treat a cell as a formula (or hide it).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def atomic_write_text(
    path: Path, text: str, *, fsync: bool = True, newline: str | None = None
) -> None:
    """Write ``text`` to ``path`` atomically (temporary file + ``os.replace``).

    Parameters
    ----------
    path : Path
        Destination; its folder must exist.
    text : str
        Content, written as UTF-8.
    fsync : bool
        Flush the data to stable storage before the rename.
    newline : str, optional
        Passed to :func:`open` (``""`` keeps line endings as given).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as fh:
            fh.write(text)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any, *, fsync: bool = True, indent: int = 1) -> None:
    """Write ``data`` as strict JSON (no NaN) to ``path`` atomically."""
    atomic_write_text(path, json.dumps(data, indent=indent, allow_nan=False), fsync=fsync)


def neutralise_formula(value: Any) -> Any:
    """Prefix a text value that a spreadsheet would run as a formula with ``'``.

    Non-text values are returned unchanged.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def restore_formula(value: Any) -> Any:
    """Undo :func:`neutralise_formula`: drop the ``'`` it put before a formula prefix.

    So a name saved to CSV as ``'=x`` reads back as ``=x``. A text that really began
    with ``'=`` cannot be told apart and loses its apostrophe.
    """
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_PREFIXES):
        return value[1:]
    return value


def csv_delimiter(text: str) -> str:
    """The value separator of a CSV text, read from its header line: ``,``, ``;`` or tab.

    Spreadsheets in locales with a decimal comma write ``;`` (or tabs) between values;
    in such files numbers may use a decimal comma (see :func:`decimal_number`).
    """
    header = text.split("\n", 1)[0]
    return next((d for d in (",", ";", "\t") if d in header), ",")


@overload
def decimal_number(text: str, delimiter: str) -> str: ...


@overload
def decimal_number(text: None, delimiter: str) -> None: ...


def decimal_number(text: str | None, delimiter: str) -> str | None:
    """``text`` with a decimal comma made a point, unless commas separate the values."""
    return text if text is None or delimiter == "," else text.replace(",", ".")


def read_spreadsheet_text(path: Path) -> str:
    """The text of a CSV file written by hand or by a spreadsheet.

    UTF-8 (with or without a byte-order mark) first; a file that is not UTF-8 is read
    as Windows-1252, the encoding Excel on Windows uses for "CSV (comma delimited)",
    so ``µm`` or an accented name in such a file reads as written.

    Raises
    ------
    UnicodeDecodeError
        If the file is neither UTF-8 nor Windows-1252 text.
    OSError
        If it cannot be read.
    """
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252")
