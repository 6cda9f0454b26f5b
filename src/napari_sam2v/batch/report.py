"""The batch run report: what happened to each video, and what was written."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_sam2v._files import atomic_write_text
from napari_sam2v.batch.tasks import VideoOutcome

__all__ = ["BatchReport"]


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
        Combined tables written (see :func:`~napari_sam2v.batch.combine_tables`).
    table_units : tuple of str or None
        ``(length unit, time unit)`` of the combined tables' physical columns.
    mixed_units : list of str
        Videos left in their own units in the combined tables (not convertible).
    """

    out: Path
    scheduler: str
    n_workers: int
    outcomes: list[VideoOutcome] = field(default_factory=list)
    wall_seconds: float = 0.0
    tables: dict[str, str] = field(default_factory=dict)
    table_units: tuple[str, str] | None = None
    mixed_units: list[str] = field(default_factory=list)

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
            "table_units": None if self.table_units is None else list(self.table_units),
            "mixed_units": list(self.mixed_units),
            "videos": [o.to_dict() for o in self.outcomes],
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Write the report as JSON (default ``<out>/batch_report.json``)."""
        target = Path(path) if path is not None else self.out / "batch_report.json"
        atomic_write_text(target, json.dumps(self.to_dict(), indent=2), fsync=False)
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
        if self.table_units is not None and self.tables:
            lines.append(
                "  combined tables in {} and {}; each row's length_unit and time_unit "
                "say so".format(*self.table_units)
            )
        if self.mixed_units:
            lines.append(
                f"  note: {', '.join(self.mixed_units)} could not be fully converted (no "
                "pixel size or frame interval, or a unit of its own): their rows keep "
                "pixels or frames on that axis and are converted on the other; compare "
                "rows only within one length_unit and time_unit, or calibrate those "
                "videos (manifest pixel_size/unit, then --remeasure)"
            )
        for path in self.tables.values():
            lines.append(f"  wrote {path}")
        return "\n".join(lines)
