"""The batch run report and the combined tables (one row per video and object)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from napari_sam2v.batch.tasks import VideoOutcome
from napari_sam2v.errors import StoreError

__all__ = ["BatchReport", "combine_tables", "read_video_table"]


def read_video_table(tables_dir: str | Path, kind: str) -> pd.DataFrame | None:
    """Read one per-video table written by ``Measurements.save`` (any format).

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
    folder = Path(tables_dir)
    parquet, csv = folder / f"{kind}.parquet", folder / f"{kind}.csv"
    if parquet.is_file():
        return pd.read_parquet(parquet)
    if csv.is_file():
        return pd.read_csv(csv)
    workbook = folder / "measurements.xlsx"
    if workbook.is_file():
        sheets = pd.read_excel(workbook, sheet_name=None)
        return sheets.get(kind)
    return None


def _write_atomic(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    else:
        frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def combine_tables(
    outcomes: Iterable[VideoOutcome],
    out: str | Path,
    *,
    kinds: tuple[str, ...] = ("tracks", "frames"),
) -> dict[str, str]:
    """Concatenate the per-video tables of finished videos, with a ``video`` column.

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
    dict of str to str
        ``"<kind>.<format>" -> path`` of each file written.

    Raises
    ------
    StoreError
        If a finished video's table cannot be read.
    """
    out = Path(out)
    written: dict[str, str] = {}
    finished = [o for o in outcomes if o.status in ("done", "skipped")]
    for kind in kinds:
        parts: list[pd.DataFrame] = []
        for outcome in finished:
            try:
                table = read_video_table(outcome.tables, kind)
            except (OSError, ValueError) as exc:
                raise StoreError(f"{outcome.name}: cannot read its {kind} table ({exc})") from None
            if table is None:
                continue
            table = table.copy()
            table.insert(0, "video", outcome.name)
            parts.append(table)
        if not parts:
            continue
        combined = pd.concat(parts, ignore_index=True, sort=False)
        for suffix in (".parquet", ".csv"):
            path = out / f"batch_{kind}{suffix}"
            _write_atomic(combined, path)
            written[f"{kind}{suffix}"] = str(path)
    return written


@dataclass
class BatchReport:
    """What a batch run did.

    Parameters
    ----------
    out : pathlib.Path
        Batch output folder.
    scheduler : str
        Scheduler address the batch ran on.
    n_workers : int
        Workers connected when the batch started.
    outcomes : list of VideoOutcome
        One per manifest row, in manifest order.
    wall_seconds : float
        Wall-clock time of the whole batch.
    tables : dict of str to str
        Combined tables written (see :func:`combine_tables`).
    """

    out: Path
    scheduler: str
    n_workers: int
    outcomes: list[VideoOutcome] = field(default_factory=list)
    wall_seconds: float = 0.0
    tables: dict[str, str] = field(default_factory=dict)

    def _with(self, *statuses: str) -> list[VideoOutcome]:
        return [o for o in self.outcomes if o.status in statuses]

    @property
    def succeeded(self) -> list[VideoOutcome]:
        """Videos tracked and measured by this run."""
        return self._with("done")

    @property
    def skipped(self) -> list[VideoOutcome]:
        """Videos finished by an earlier run."""
        return self._with("skipped")

    @property
    def failed(self) -> list[VideoOutcome]:
        """Videos that failed, with their reason in ``error``."""
        return self._with("failed")

    @property
    def ok(self) -> bool:
        """Whether every video is finished."""
        return not self.failed

    @property
    def videos_per_minute(self) -> float:
        """Videos processed (not skipped) per minute of wall-clock time."""
        if self.wall_seconds <= 0:
            return 0.0
        return 60.0 * len(self.succeeded) / self.wall_seconds

    @property
    def model_loads(self) -> int:
        """How many times a worker built an engine (at most once per worker and model)."""
        return sum(1 for o in self.outcomes if o.model_loaded)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of the whole report."""
        return {
            "out": str(self.out),
            "scheduler": self.scheduler,
            "n_workers": self.n_workers,
            "wall_seconds": round(self.wall_seconds, 3),
            "videos_per_minute": round(self.videos_per_minute, 3),
            "counts": {
                "total": len(self.outcomes),
                "done": len(self.succeeded),
                "skipped": len(self.skipped),
                "failed": len(self.failed),
            },
            "model_loads": self.model_loads,
            "tables": dict(self.tables),
            "videos": [o.to_dict() for o in self.outcomes],
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Write the report as JSON (default ``<out>/batch_report.json``)."""
        target = Path(path) if path is not None else self.out / "batch_report.json"
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        os.replace(tmp, target)
        return target

    def format(self) -> str:
        """A short plain-text summary for the terminal."""
        lines = [
            f"batch: {len(self.outcomes)} videos on {self.n_workers} worker(s) "
            f"({self.scheduler}) in {self.wall_seconds:.1f} s",
            f"  done {len(self.succeeded)}, skipped (already finished) {len(self.skipped)}, "
            f"failed {len(self.failed)}; {self.videos_per_minute:.2f} videos/min; "
            f"models built {self.model_loads}",
        ]
        for outcome in self.outcomes:
            if outcome.status == "failed":
                lines.append(f"  FAILED row {outcome.row} {outcome.name}: {outcome.error}")
            else:
                seconds = outcome.seconds.get("total", 0.0)
                resumed = ", resumed" if outcome.resumed else ""
                if outcome.measured_only:
                    resumed = ", measured from its finished store"
                lines.append(
                    f"  {outcome.status:7s} row {outcome.row} {outcome.name}: "
                    f"{outcome.n_frames} frames, {outcome.n_objects} objects, "
                    f"{seconds:.1f} s{resumed}"
                )
        if any(o.engine_info.get("random_weights") for o in self.outcomes):
            lines.append(
                "  note: a model with random weights (a test model) was used; "
                "its masks are not a result"
            )
        for path in self.tables.values():
            lines.append(f"  wrote {path}")
        return "\n".join(lines)
