"""The writable OME-Zarr result store (see :mod:`napari_sam2v.store.layout`)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_sam2v.engines.base import EngineInfo, FrameResult, compose_labels
from napari_sam2v.errors import (
    DamagedStoreError,
    EngineError,
    StoreError,
    StoreExistsError,
    reading_store,
)
from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.prompts import PromptSet
from napari_sam2v.store import layout
from napari_sam2v.store.image_copy import write_image_copy
from napari_sam2v.store.journal import FrameRecord, ProgressJournal, StoreLock, pid_alive
from napari_sam2v.store.provenance import (
    jsonable,
    load_store_meta,
    now,
    package_versions,
    rgba,
)
from napari_sam2v.store.writer import BackgroundWriter
from napari_sam2v.types import Calibration, ObjectInfo

__all__ = ["ResultStore"]


class ResultStore:
    """A result store opened for writing (holds the writer lock).

    Create one with :meth:`create` or reopen one with :meth:`open`; write frames with
    :meth:`write_frame` (synchronous) or through :meth:`writer` (background thread);
    :meth:`close` releases the lock. Read results with
    :func:`napari_sam2v.store.open_result`.
    """

    def __init__(
        self, path: Path, root: Any, meta: dict[str, Any], lock: StoreLock, *, fsync: bool
    ) -> None:
        self.path = path
        self._root = root
        self.meta = meta
        self._lock = lock
        self.fsync = fsync
        self._private = path / layout.PRIVATE
        self._zarr_format = layout.zarr_format(meta["ngff_version"])
        self.labels = root[f"labels/{meta['labels_name']}/0"]
        self._labels_dir = path / "labels" / meta["labels_name"] / "0"
        #: Per-object masks (``keep_masks``), or ``None``.
        self.masks = root[f"{layout.PRIVATE}/masks"] if meta.get("keep_masks") else None
        self.journal = ProgressJournal(self._private / "progress.jsonl", fsync=fsync)
        self.records: dict[int, FrameRecord] = self.journal.read(self.n_frames)
        self._object_index = {o["id"]: i for i, o in enumerate(meta["objects"])}

    # -- creation ------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        n_frames: int,
        frame_shape: tuple[int, int],
        prompts: PromptSet,
        calibration: Calibration | None = None,
        source: dict[str, Any] | None = None,
        image: Any = None,
        engine_info: EngineInfo | None = None,
        settings: dict[str, Any] | None = None,
        ngff_version: str = "0.4",
        keep_masks: bool = False,
        overwrite: bool = False,
        fsync: bool = True,
    ) -> ResultStore:
        """Create a new store and take its writer lock.

        Parameters
        ----------
        path : path-like
            The ``.zarr`` folder to create.
        n_frames, frame_shape
            Size of the label image ``(n_frames, *frame_shape)``.
        prompts : PromptSet
            Prompts and objects (names and colours go into ``image-label``).
        calibration : Calibration, optional
            Physical scale written as NGFF axes units and ``scale``.
        source : dict, optional
            Reference to the input (path, size, frame count, hash).
        image : array-like, optional
            ``(t, y, x[, c])`` frames to copy into the store as the OME-Zarr image.
        engine_info : EngineInfo, optional
            Engine provenance; ``random_weights`` is flagged in the metadata.
        settings : dict, optional
            Run settings recorded as provenance.
        ngff_version : {"0.4", "0.5"}
            OME-NGFF version (0.4: zarr v2, read by Fiji/MoBIE today; 0.5: zarr v3).
        keep_masks : bool
            Also store every object's own mask, so overlaps are kept.
        overwrite : bool
            Replace an existing napari-sam2v store at ``path``.
        fsync : bool
            Flush every finished frame to stable storage before recording it done.

        Raises
        ------
        StoreError
            If ``path`` exists (and ``overwrite`` is false, or it is not a result store)
            or cannot be written.
        StoreLockedError
            If another writer holds the existing store.
        """
        import zarr
        from ome_zarr.writer import write_label_metadata, write_multiscales_metadata

        path = Path(path)
        if ngff_version not in layout.NGFF_VERSIONS:
            raise StoreError(f"unsupported NGFF version {ngff_version!r}: use '0.4' or '0.5'")
        calibration = calibration or Calibration()
        prompts = Prompts.from_prompt_set(prompts)
        if path.exists():
            cls._check_replaceable(path, overwrite=overwrite)
        # Build the new store beside the target and move it into place only when it is
        # complete: a failure (unreadable input frame, full disk) never leaves a broken
        # store, and never costs the store that ``overwrite`` would have replaced.
        staging = path.with_name(f".{path.name}.creating-{os.getpid()}")
        cls._remove_dead_staging(path)
        fmt, zfmt = layout.ngff_format(ngff_version), layout.zarr_format(ngff_version)
        objects = list(prompts.objects)
        max_id = max((o.id for o in objects), default=1)
        dtype = np.uint16 if max_id < 2**16 else np.uint32
        shape = (int(n_frames), int(frame_shape[0]), int(frame_shape[1]))
        info = engine_info
        meta: dict[str, Any] = {
            "format_version": layout.FORMAT_VERSION,
            "ngff_version": ngff_version,
            "labels_name": layout.LABELS_NAME,
            "created": now(),
            "shape": list(shape),
            "objects": [{"id": o.id, "name": o.name, "color": o.color} for o in objects],
            "calibration": calibration.to_dict(),
            "source": source or {},
            "image": None,
            "engine": None
            if info is None
            else {
                "engine": info.engine,
                "model": info.model,
                "model_hash": info.model_hash,
                "device": info.device,
                "random_weights": info.random_weights,
                "settings": jsonable(info.settings),
            },
            "random_weights": bool(info and info.random_weights),
            "settings": jsonable(settings or {}),
            "keep_masks": bool(keep_masks),
            "overlap_rule": "higher object_score_logit wins, then lower object id",
            "versions": package_versions(),
        }
        try:
            staging.mkdir(parents=True)
            root = zarr.open_group(str(staging), mode="w", zarr_format=zfmt)
            private = root.create_group(layout.PRIVATE)
            kwargs = layout.array_kwargs(zfmt)
            if image is not None:
                meta["image"] = write_image_copy(root, image, calibration, fmt, kwargs)
            labels_group = root.create_group("labels").create_group(layout.LABELS_NAME)
            labels_group.create_array(
                "0",
                shape=shape,
                chunks=layout.chunk_shape(shape[1:]),
                dtype=dtype,
                **kwargs,
                **layout.dimension_names(zfmt, ["t", "y", "x"]),
            )
            write_multiscales_metadata(
                labels_group,
                [
                    {
                        "path": "0",
                        "coordinateTransformations": [
                            {"type": "scale", "scale": layout.ngff_scale(calibration)}
                        ],
                    }
                ],
                fmt=fmt,
                axes=layout.ngff_axes(calibration),
                name=layout.LABELS_NAME,
            )
            write_label_metadata(
                root["labels"],
                layout.LABELS_NAME,
                colors=[{"label-value": o.id, "rgba": rgba(o.color)} for o in objects],
                properties=[{"label-value": o.id, "name": o.name} for o in objects],
                fmt=fmt,
                **({"source": {"image": "../../"}} if image is not None else {}),
            )
            labels_attrs = root["labels"].attrs
            labels_attrs.put(layout.ome_versioned(dict(labels_attrs), ngff_version))
            if keep_masks:
                mshape = (shape[0], max(1, len(objects)), shape[1], shape[2])
                private.create_array(
                    "masks",
                    shape=mshape,
                    chunks=layout.chunk_shape(mshape[1:]),
                    dtype=bool,
                    **{**kwargs, "fill_value": False},
                    **layout.dimension_names(zfmt, ["t", "object", "y", "x"]),
                )
            root.attrs[layout.META_KEY] = meta
            prompts.save(staging / layout.PRIVATE / "prompts.json")
            layout.atomic_write_json(
                staging / layout.PRIVATE / "state.json", {"status": "created", "updated": now()}
            )
            if path.exists():
                cls._remove_existing(path, overwrite=overwrite)
            os.rename(staging, path)
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, OSError) and not isinstance(exc, StoreError):
                raise StoreError(f"{path}: cannot create the result store ({exc})") from exc
            raise
        lock = StoreLock(path / layout.PRIVATE / "lock.json")
        lock.acquire()
        return cls(path, zarr.open_group(str(path), mode="r+"), meta, lock, fsync=fsync)

    @staticmethod
    def _remove_dead_staging(path: Path) -> None:
        """Delete half-built stores left beside ``path`` by processes that died."""
        if not path.parent.is_dir():
            return
        for candidate in path.parent.glob(f".{path.name}.creating-*"):
            pid = candidate.name.rpartition("-")[2]
            if pid.isdigit() and (int(pid) == os.getpid() or not pid_alive(int(pid))):
                shutil.rmtree(candidate, ignore_errors=True)

    @staticmethod
    def is_incomplete(path: str | os.PathLike[str]) -> bool:
        """Whether ``path`` is a store whose creation was interrupted (it holds no frames).

        Creation writes ``sam2v/state.json`` last; until then no frame
        can have been written, so such a folder can be replaced safely.
        """
        path = Path(path)
        if not path.is_dir() or (path / layout.PRIVATE / "state.json").exists():
            return False
        allowed = {".zgroup", ".zattrs", "zarr.json", layout.PRIVATE, "labels", "0"}
        return {p.name for p in path.iterdir()} <= allowed

    @staticmethod
    def _check_replaceable(path: Path, *, overwrite: bool) -> None:
        """Replace only a result store, and only with ``overwrite`` (or an empty folder)."""
        if not path.is_dir():
            raise StoreError(
                f"{path} exists and is not a folder; choose another output (it is not replaced)"
            )
        if not any(path.iterdir()):
            return
        if not ((path / layout.PRIVATE).is_dir() or ResultStore.is_incomplete(path)):
            raise StoreError(
                f"{path} exists and is not a napari-sam2v result store; choose another "
                "output (it is not replaced)"
            )
        if not overwrite:
            raise StoreExistsError(
                f"{path} already holds a result store: resume it (resume=True), replace it "
                "(overwrite=True) or choose another output",
                path=path,
            )
        StoreLock(path / layout.PRIVATE / "lock.json").check_free()

    @staticmethod
    def _remove_existing(path: Path, *, overwrite: bool) -> None:
        ResultStore._check_replaceable(path, overwrite=overwrite)
        lock = StoreLock(path / layout.PRIVATE / "lock.json")
        if (path / layout.PRIVATE).is_dir():
            lock.acquire()  # refuses while another writer is active
        try:
            shutil.rmtree(path)
        except OSError as exc:
            raise StoreError(f"{path}: cannot remove the old store ({exc})") from exc

    # -- reopening -----------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str], *, fsync: bool = True) -> ResultStore:
        """Reopen an existing store for writing (e.g. to resume), taking its lock.

        Raises
        ------
        StoreError
            If ``path`` is not a complete napari-sam2v store.
        StoreVersionError
            If the store is from a newer format version.
        StoreLockedError
            If another writer holds it.
        """
        import zarr

        path = Path(path)
        _, meta = load_store_meta(path)
        if layout.read_json(path / layout.PRIVATE / "state.json") is None:
            raise DamagedStoreError(
                f"{path}: its run state (sam2v/state.json) is missing or unreadable, so it "
                "cannot be written to any more; its labels can still be measured and "
                "exported. To track again, write a new store"
            )
        lock = StoreLock(path / layout.PRIVATE / "lock.json")
        lock.acquire()
        try:
            with reading_store(path, "its label image"):
                root = zarr.open_group(str(path), mode="r+")
                return cls(path, root, meta, lock, fsync=fsync)
        except BaseException:
            lock.release()
            raise

    # -- properties ----------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        """Number of frames of the label image."""
        return int(self.meta["shape"][0])

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(height, width)`` of the label image."""
        return int(self.meta["shape"][1]), int(self.meta["shape"][2])

    @property
    def objects(self) -> list[ObjectInfo]:
        """The tracked objects."""
        return [ObjectInfo(o["id"], o["name"], o["color"]) for o in self.meta["objects"]]

    @property
    def calibration(self) -> Calibration:
        """The recorded calibration (see :meth:`set_calibration`)."""
        return Calibration.from_dict(self.meta.get("calibration") or {})

    def set_calibration(self, calibration: Calibration) -> Calibration:
        """Rewrite the calibration: provenance and OME-Zarr scales; returns the old one.

        See :func:`napari_sam2v.store.calibrate.write_calibration`.
        """
        from napari_sam2v.store.calibrate import write_calibration

        return write_calibration(self, calibration)

    @property
    def prompts(self) -> Prompts:
        """The prompts recorded at creation."""
        return Prompts.load(self._private / "prompts.json", allow_empty=True)

    @property
    def frames_done(self) -> np.ndarray:
        """Boolean array: which frames are durably written."""
        done = np.zeros(self.n_frames, dtype=bool)
        done[list(self.records)] = True
        return done

    def is_done(self, frame: int, object_ids: Sequence[int] | None = None) -> bool:
        """Whether ``frame`` is written (for all of ``object_ids`` when given)."""
        record = self.records.get(frame)
        if record is None:
            return False
        return object_ids is None or set(object_ids) <= set(record.objects)

    # -- writing -------------------------------------------------------------------
    def write_frame(self, result: FrameResult) -> None:
        """Write one frame's labels (and masks), then record it as done.

        See :meth:`write_frames`.
        """
        self.write_frames([result])

    def write_frames(self, results: Sequence[FrameResult]) -> None:
        """Write several frames, then record them as done (group commit).

        A frame is journalled only after its chunks are written (and fsynced when
        ``fsync`` is on), so a crash never leaves a frame that looks finished but is
        not. Batching lets one journal fsync cover several frames when the writer
        falls behind the engine.

        Raises
        ------
        EngineError
            If a mask does not match the frame size (frames before it are kept).
        StoreError
            If the write fails (disk full, permissions, ...).
        """
        written: list[FrameRecord] = []
        try:
            for result in results:
                written.append(self._write_chunks(result))
        finally:
            if written:
                self._commit(written)

    def _write_chunks(self, result: FrameResult) -> FrameRecord:
        frame = int(result.frame)
        if not 0 <= frame < self.n_frames:
            raise EngineError(f"frame {frame} is outside the store (0..{self.n_frames - 1})")
        for oid, mask in result.masks.items():
            if np.shape(mask) != self.frame_shape:
                raise EngineError(
                    f"frame {frame}, object {oid}: mask shape {np.shape(mask)} does not match "
                    f"the video frame {self.frame_shape}"
                )
        labels = compose_labels(
            result.masks, result.scores, shape=self.frame_shape, dtype=self.labels.dtype
        )
        try:
            self.labels[frame] = labels
            if self.masks is not None:
                stack = np.zeros(self.masks.shape[1:], dtype=bool)
                for oid, mask in result.masks.items():
                    if oid in self._object_index:
                        stack[self._object_index[oid]] = mask
                self.masks[frame] = stack
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot write frame {frame} ({exc})") from exc
        return FrameRecord(
            frame,
            tuple(sorted(int(k) for k in result.masks)),
            {int(k): (float(s.object_score_logit), float(s.iou)) for k, s in result.scores.items()},
        )

    def _commit(self, records: list[FrameRecord]) -> None:
        try:
            if self.fsync:
                for record in records:
                    self._fsync_frame(record.frame)
            self.journal.append(records)
        except OSError as exc:
            frames = ", ".join(str(r.frame) for r in records)
            raise StoreError(f"{self.path}: cannot record frames {frames} ({exc})") from exc
        for record in records:
            self.records[record.frame] = record

    def _fsync_frame(self, frame: int) -> None:
        dirs = [layout.frame_chunk_dir(self._labels_dir, frame, self._zarr_format)]
        if self.masks is not None:
            dirs.append(
                layout.frame_chunk_dir(
                    self.path / layout.PRIVATE / "masks", frame, self._zarr_format
                )
            )
        for top in dirs:
            for folder, _, files in os.walk(top):
                for name in files:
                    fd = os.open(os.path.join(folder, name), os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)

    def writer(self, *, queue_size: int = 4) -> BackgroundWriter:
        """A :class:`BackgroundWriter` feeding :meth:`write_frames` from a queue."""
        return BackgroundWriter(self.write_frames, queue_size=queue_size)

    def set_state(self, status: str, **info: Any) -> None:
        """Record the run status (``running``, ``complete``, ``cancelled``, ``failed``)."""
        state = {"status": status, "updated": now(), **jsonable(info)}
        try:
            layout.atomic_write_json(self._private / "state.json", state, fsync=self.fsync)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot record the run state ({exc})") from exc

    def close(self) -> None:
        """Close the journal and release the writer lock."""
        self.journal.close()
        self._lock.release()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
