"""What one batch task receives and what it gives back (plain, picklable values)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from napari_sam2v.batch.manifest import ManifestRow

__all__ = ["TaskOptions", "VideoOutcome", "VideoTask", "Status"]

#: ``done``: tracked and measured now; ``skipped``: finished by an earlier run;
#: ``failed``: an error stopped this video (the others go on).
Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class TaskOptions:
    """Batch-wide settings shared by every video.

    Parameters
    ----------
    engine : str
        ``"sam2"`` or ``"classic"``.
    model : str or None
        Default model name or path (a manifest row's ``model`` overrides it).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    direction : str
        ``"forward"``, ``"backward"`` or ``"both"``.
    table_format : str
        Format of the per-video tables: ``"csv"``, ``"parquet"`` or ``"xlsx"``.
    plots : bool
        Also write the per-video plots.
    torch_threads : int or None
        Threads torch may use in a worker (``None`` leaves torch's default).
    engine_options : tuple of (str, object) pairs
        Further keyword options of the engine (``precision``, ``feature``, ...),
        sorted by name.
    remeasure : bool
        Measure videos finished by an earlier run again from their stores, without
        tracking (after a calibration was corrected, or for another table format).
    """

    engine: str = "sam2"
    model: str | None = None
    device: str = "auto"
    direction: str = "forward"
    table_format: str = "csv"
    plots: bool = False
    torch_threads: int | None = None
    engine_options: tuple[tuple[str, Any], ...] = ()
    remeasure: bool = False
    batch_id: str = ""


@dataclass(frozen=True)
class VideoTask:
    """One video to process: a manifest row, its output folder and the options.

    Parameters
    ----------
    row : ManifestRow
        The manifest row.
    out_dir : pathlib.Path
        Folder of this video's outputs (``<batch out>/<row.name>``).
    options : TaskOptions
        Batch-wide settings.
    """

    row: ManifestRow
    out_dir: Path
    options: TaskOptions

    @property
    def store_path(self) -> Path:
        """The video's result store."""
        return self.out_dir / "result.zarr"

    @property
    def tables_dir(self) -> Path:
        """Folder of the video's measurement tables."""
        return self.out_dir / "tables"

    @property
    def done_marker(self) -> Path:
        """File written last, when the store and tables are complete."""
        return self.out_dir / "done.json"

    @property
    def model(self) -> str | None:
        """Model of this video (the row's, else the batch default)."""
        return self.row.model or self.options.model


@dataclass
class VideoOutcome:
    """What happened to one video.

    Parameters
    ----------
    name : str
        Output name of the video (its folder under the batch output).
    video : str
        Path of the video.
    row : int
        Manifest row number.
    status : {"done", "skipped", "failed"}
        Outcome.
    error : str
        Why it failed (empty otherwise).
    resumed : bool
        Whether a store from an earlier run was found (and resumed if partial).
    measured_only : bool
        Whether that store was already complete, so the video was measured without
        tracking.
    n_frames, n_objects : int
        Size of the result (0 when unknown).
    seconds : dict of str to float
        Wall-clock time per stage (``track``, ``measure``, ``total``).
    worker : str
        Address of the worker that ran it.
    pid : int
        Process id of that worker.
    model_loaded : bool
        Whether this task had to build the engine (``False`` when it came from
        the worker's cache).
    engine_info : dict
        Engine provenance (engine, model, device, random_weights).
    """

    name: str
    video: str
    row: int
    status: Status
    error: str = ""
    resumed: bool = False
    measured_only: bool = False
    n_frames: int = 0
    n_objects: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    worker: str = ""
    pid: int = 0
    model_loaded: bool = False
    engine_info: dict[str, Any] = field(default_factory=dict)
    store: str = ""
    tables: str = ""

    @classmethod
    def failed(cls, task: VideoTask, error: str = "", **fields: Any) -> VideoOutcome:
        """A ``failed`` outcome of ``task`` (until a run says otherwise).

        Parameters
        ----------
        task : VideoTask
            The video.
        error : str, optional
            Why it failed.
        **fields
            Further fields (``worker``, ``pid``, ...).
        """
        row = task.row
        return cls(
            name=row.name, video=str(row.video), row=row.row, status="failed", error=error,
            store=str(task.store_path), tables=str(task.tables_dir), **fields,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return asdict(self)
