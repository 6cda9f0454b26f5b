"""Reading a result store: :func:`open_result` and :class:`Result` (no lock taken)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from napari_sam2v.errors import READ_ERRORS, DamagedStoreError, InputError, StoreError
from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.store import layout
from napari_sam2v.store.journal import FrameRecord, ProgressJournal
from napari_sam2v.store.provenance import load_store_meta
from napari_sam2v.types import Calibration, ObjectInfo

__all__ = ["Result", "file_fingerprint", "open_result"]

_HASH_BYTES = 1 << 20


def file_fingerprint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Reference to an input file: absolute path, size and SHA-256 of its first MiB."""
    path = Path(path).resolve()
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        digest.update(fh.read(_HASH_BYTES))
    return {"path": str(path), "size": path.stat().st_size, "sha256_first_mb": digest.hexdigest()}


#: The parts of :func:`file_fingerprint` that identify a file's content.
FINGERPRINT_KEYS = ("size", "sha256_first_mb")


def same_file(recorded: dict[str, Any], path: str | os.PathLike[str] | None) -> bool:
    """Whether the file at ``path`` has the size and first-MiB hash ``recorded`` holds.

    ``False`` when ``path`` is missing or not a file, or when ``recorded`` lacks one
    of the :data:`FINGERPRINT_KEYS` (a store's ``source`` of a file input has both).
    """
    if path is None or not Path(path).is_file():
        return False
    current = file_fingerprint(path)
    return all(current[key] == recorded.get(key) for key in FINGERPRINT_KEYS)


class Result:
    """A tracking result read from a store (see ``docs/architecture.md``).

    Use :func:`open_result` to create one. Attributes are read when the result is
    opened; call :meth:`refresh` to re-read progress while a run is writing.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._root, self._meta = load_store_meta(path)
        self.refresh()

    def refresh(self) -> None:
        """Re-read the progress journal and run state."""
        journal = ProgressJournal(self.path / layout.PRIVATE / "progress.jsonl", fsync=False)
        self._records: dict[int, FrameRecord] = journal.read(self.n_frames)
        self._state = layout.read_json(self.path / layout.PRIVATE / "state.json") or {}

    def __repr__(self) -> str:
        done = int(self.frames_done.sum())
        return (
            f"Result({str(self.path)!r}, {self.n_frames} frames ({done} done), "
            f"{len(self.objects)} objects, status={self.status!r})"
        )

    # -- labels ----------------------------------------------------------------------
    @property
    def _labels_key(self) -> str:
        return f"labels/{self._meta['labels_name']}/0"

    def labels_array(self, writable: bool = True) -> Any:
        """The label image as a ``zarr.Array`` ``(t, y, x)``.

        Parameters
        ----------
        writable : bool
            Open it for writing, so edits (napari paint/erase) go straight to disk.
        """
        import zarr

        try:
            return zarr.open_array(
                str(self.path / self._labels_key), mode="r+" if writable else "r"
            )
        except PermissionError as exc:
            raise StoreError(f"{self.path}: the labels are read-only ({exc})") from exc
        except READ_ERRORS as exc:
            raise DamagedStoreError.reading(self.path, "its label image", exc) from exc

    @property
    def labels(self) -> Any:
        """The label image as a lazy dask array ``(t, y, x)``; 0 is background."""
        import dask.array as da

        return da.from_zarr(self.labels_array(writable=False))

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self._meta["shape"][0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(t, y, x)`` of the label image."""
        t, y, x = (int(v) for v in self._meta["shape"])
        return t, y, x

    # -- provenance --------------------------------------------------------------------
    @property
    def objects(self) -> list[ObjectInfo]:
        """The tracked objects with names and colours."""
        return [ObjectInfo(o["id"], o["name"], o["color"]) for o in self._meta["objects"]]

    @property
    def prompts(self) -> Prompts:
        """The prompts of the run."""
        return Prompts.load(self.path / layout.PRIVATE / "prompts.json", allow_empty=True)

    @property
    def calibration(self) -> Calibration:
        """Physical calibration (pixel size, frame interval)."""
        return Calibration.from_dict(self._meta.get("calibration") or {})

    @property
    def frames_done(self) -> np.ndarray:
        """``bool`` array of length ``t``: frames durably written."""
        done = np.zeros(self.n_frames, dtype=bool)
        done[list(self._records)] = True
        return done

    @property
    def objects_done(self) -> dict[int, tuple[int, ...]]:
        """``frame -> object ids`` written on that frame."""
        return {f: r.objects for f, r in sorted(self._records.items())}

    @property
    def scores(self) -> Any:
        """Per-frame, per-object scores as a DataFrame, or ``None`` before any frame.

        Columns: ``object_id, frame, object_score_logit, iou``.
        """
        import pandas as pd

        rows = [
            (oid, frame, logit, iou)
            for frame, record in sorted(self._records.items())
            for oid, (logit, iou) in sorted(record.scores.items())
        ]
        if not rows:
            return None
        return pd.DataFrame(rows, columns=["object_id", "frame", "object_score_logit", "iou"])

    @property
    def status(self) -> str:
        """Run status: ``created``, ``running``, ``complete``, ``cancelled`` or ``failed``."""
        return str(self._state.get("status", "unknown"))

    @property
    def complete(self) -> bool:
        """Whether every frame is written."""
        return bool(self.frames_done.all())

    @property
    def video_path(self) -> str | None:
        """Path of the input video, when it came from a file."""
        return (self._meta.get("source") or {}).get("path")

    @property
    def metadata(self) -> dict[str, Any]:
        """Provenance: engine, model, hash, settings, versions, source, run state."""
        return {**self._meta, "state": dict(self._state)}

    @property
    def random_weights(self) -> bool:
        """``True`` when the engine ran with random (test) weights: not a real result."""
        return bool(self._meta.get("random_weights"))

    def contains(self, path: str | os.PathLike[str]) -> bool:
        """Whether ``path`` lies inside this store's folder (nothing else is written there)."""
        return Path(path).resolve().is_relative_to(Path(self.path).resolve())

    # -- image -------------------------------------------------------------------------
    @property
    def image_copied(self) -> bool:
        """Whether the input frames are stored inside the result."""
        return bool(self._meta.get("image"))

    def open_image(self, *, channel: int | None = None) -> Any:
        """The input frames as a :class:`~napari_sam2v.io.VideoSource`, or ``None``.

        The copy inside the store is used when there is one, read with the axes it
        was written with (``(t, y, x)`` or ``(t, c, y, x)``, whatever its number of
        channels); otherwise the referenced file is reopened if it still exists with
        the same size and first-MiB hash (:func:`same_file`), with the axes recorded
        for it (``source["axes"]``, for data that does not name its axes).

        Parameters
        ----------
        channel : int, optional
            Keep only this channel of multi-channel frames (default: all channels of
            the copy; the tracked channel of the referenced file).

        Returns
        -------
        VideoSource or None
            ``None`` when there is no copy and the referenced file is gone, has
            changed, or (without ``channel``) cannot be read.

        Raises
        ------
        InputError
            ``channel`` was given and the frames do not have it (the message names
            the channels they have), or the unchanged referenced file cannot be
            read with it.
        """
        from napari_sam2v.io import open_video

        image = self._meta.get("image")
        source = self._meta.get("source") or {}
        if image:
            import zarr

            axes = str(image.get("axes") or "").upper()  # how the store wrote it: TYX or TCYX
            tracked = source.get("channel")
            if channel is not None and axes == "TYX" and tracked is not None:
                # the copy holds the tracked channel alone, under its number in the input
                if int(channel) != int(tracked):
                    return self._other_channel(int(channel), int(tracked))
                channel = None
            arr = zarr.open_array(str(self.path / image["path"]), mode="r")
            return open_video(arr, channel=channel, axes=axes or None)
        return self._open_source(channel)

    def _other_channel(self, channel: int, tracked: int) -> Any:
        """Channel ``channel`` of the unchanged input file, beside a copy of ``tracked``."""
        video = self._open_source(channel)
        if video is None:
            where = f" {self.video_path}" if self.video_path else ""
            raise InputError(
                f"{self.path}: its copy of the frames holds the tracked channel {tracked} "
                f"only, and its input file{where} is gone or has changed: give the "
                f"multi-channel file for channel {channel} (--image PATH --channel {channel})"
            )
        return video

    def _open_source(self, channel: int | None) -> Any:
        """The referenced input file, if unchanged (see :meth:`open_image`)."""
        from napari_sam2v.io import open_video

        source = self._meta.get("source") or {}
        path = source.get("path")
        if not path or not Path(path).exists():
            return None
        try:
            if Path(path).is_file() and any(key in source for key in FINGERPRINT_KEYS):
                if not same_file(source, path):
                    return None
            return open_video(
                path,
                channel=source.get("channel") if channel is None else channel,
                axes=source.get("axes"),
            )
        except InputError:
            if channel is not None:
                raise  # the asked channel: say why it cannot be read
            return None
        except OSError:
            return None


def open_result(path: str | os.PathLike[str]) -> Result:
    """Open a result store for reading.

    Parameters
    ----------
    path : path-like
        The ``.zarr`` folder written by :func:`napari_sam2v.track`.

    Returns
    -------
    Result

    Raises
    ------
    StoreError
        If the path is not a napari-sam2v result store.
    StoreVersionError
        If the store comes from a newer napari-sam2v.
    """
    return Result(Path(path))
