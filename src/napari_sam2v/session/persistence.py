"""Binding a :class:`~napari_sam2v.session.TrackingSession` to an OME-Zarr result store.

A session writes its labels into a :class:`~napari_sam2v.store.ResultStore` (frame by
frame during propagation, and the preview of every click), and saves its prompts,
objects and settings there, so that :func:`open_session` can restore the work later.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_sam2v.errors import StoreError
from napari_sam2v.session.propagation import _Run
from napari_sam2v.types import Calibration

if TYPE_CHECKING:  # pragma: no cover
    from napari_sam2v.session.tracking import TrackingSession
    from napari_sam2v.store import ResultStore

__all__ = ["COPY_IMAGE_LIMIT", "create_store", "frames_copied", "open_session", "save_session"]

#: Frames without a source file are copied into the store up to this size (bytes),
#: so that the session can be reopened without the original napari layer.
COPY_IMAGE_LIMIT = 512 * 2**20


def _settings(session: TrackingSession) -> dict[str, Any]:
    return {
        "engine": session.engine_name,
        "engine_options": dict(session.engine_options),
        "channel": session.channel,
        "current_object": session.current_object,
        "interactive": True,
    }


def _source(session: TrackingSession) -> dict[str, Any]:
    from napari_sam2v.store.result import file_fingerprint

    source: dict[str, Any] = {"n_frames": session.n_frames, "channel": session.channel}
    if session.video_path and Path(session.video_path).is_file():
        source.update(file_fingerprint(session.video_path))
    elif session.video_path:
        source["path"] = str(session.video_path)
    return source


def frames_copied(session: TrackingSession) -> int:
    """Bytes of frames :func:`create_store` copies into the store (0: referenced by path)."""
    frames = session.frames
    nbytes = int(np.prod(frames.shape)) * np.dtype(frames.dtype).itemsize
    return nbytes if not session.video_path and nbytes <= COPY_IMAGE_LIMIT else 0


def create_store(
    session: TrackingSession, path: str | os.PathLike[str], *, overwrite: bool = False
) -> ResultStore:
    """Create the result store of a session and bind it (see ``TrackingSession.create_store``)."""
    from napari_sam2v.store import ResultStore

    frames = session.frames
    copy = frames_copied(session) > 0
    store = ResultStore.create(
        path,
        n_frames=session.n_frames,
        frame_shape=session.frame_shape,
        prompts=session.prompts,
        calibration=session.calibration,
        source=_source(session),
        image=frames if copy else None,
        settings=_settings(session),
        overwrite=overwrite,
        fsync=False,
    )
    store.set_state("created", interactive=True)
    return store


def save_session(session: TrackingSession) -> None:
    """Write the session's prompts, objects and settings into its store.

    The prompt file is replaced atomically; object names and colours are updated in
    the store's provenance and its OME-Zarr ``image-label`` metadata.
    """
    from napari_sam2v.io.prompt_files import Prompts
    from napari_sam2v.store import layout

    store = session.store
    if store is None:
        raise StoreError("no result store: create or open one before saving the session")
    objects = session.objects
    try:
        Prompts.from_prompt_set(session.prompts).save(store.path / layout.PRIVATE / "prompts.json")
        meta = dict(store.meta)
        meta["objects"] = [{"id": o.id, "name": o.name, "color": o.color} for o in objects]
        meta["settings"] = {**dict(meta.get("settings") or {}), **_settings(session)}
        meta["calibration"] = session.calibration.to_dict()
        import zarr

        root = zarr.open_group(str(store.path), mode="r+")  # we hold the writer lock
        root.attrs[layout.META_KEY] = meta
        store.meta = meta
        _write_label_metadata(root, layout, meta, objects)
    except OSError as exc:
        raise StoreError(f"{store.path}: cannot save the session ({exc})") from exc


def _write_label_metadata(root: Any, layout: Any, meta: dict[str, Any], objects: list) -> None:
    from ome_zarr.writer import write_label_metadata

    write_label_metadata(
        root["labels"],
        meta["labels_name"],
        colors=[
            {"label-value": o.id, "rgba": [int(o.color[i : i + 2], 16) for i in (1, 3, 5)] + [255]}
            for o in objects
        ],
        properties=[{"label-value": o.id, "name": o.name} for o in objects],
        fmt=layout.ngff_format(meta["ngff_version"]),
    )


def open_session(
    path: str | os.PathLike[str],
    *,
    frames: Any = None,
    engine_factory: Any = None,
) -> TrackingSession:
    """Restore a session from its result store (see ``TrackingSession.from_store``)."""
    from napari_sam2v.store import ResultStore, open_result
    from napari_sam2v.store.resume import drop_damaged_frames

    path = Path(path).expanduser()
    result = open_result(path)
    store = ResultStore.open(path, fsync=False)  # takes the writer lock (or refuses)
    try:
        session = _restore(result, path, frames, engine_factory)
    except BaseException:
        store.close()
        raise
    session.store = store
    # A run stopped by Cancel, a crash or a closed viewer continues with Resume, which
    # also writes again any finished frame that can no longer be read.
    state = result.metadata.get("state") or {}
    run = _Run.from_state(state, store.frames_done)
    if run is not None and drop_damaged_frames(store):
        run = _Run.from_state(state, store.frames_done)  # with those frames still to do
    session._last_run = run
    return session


def _saved_prompts(result: Any) -> Any:
    """The store's prompts; an interactive store saved before the first click has none."""
    from napari_sam2v.io.prompt_files import Prompts
    from napari_sam2v.store import layout

    data = layout.read_json(result.path / layout.PRIVATE / "prompts.json")
    if isinstance(data, dict) and data.get("prompts") == []:
        return Prompts(objects=list(result.objects), prompts=[])
    return result.prompts


def _restore(result: Any, path: Path, frames: Any, engine_factory: Any) -> TrackingSession:
    from napari_sam2v.session.tracking import TrackingSession
    from napari_sam2v.session.values import FramePrompt

    if frames is None:
        frames = result.open_image()
        if frames is None:
            raise StoreError(
                f"{path}: the video is not inside the store and its source "
                f"{result.video_path or '(unknown)'} is missing or changed; open the video "
                "in napari, pick its layer, then reopen the store"
            )
    shape = tuple(int(s) for s in frames.shape[:3])
    if shape != tuple(int(s) for s in result.labels.shape):
        raise StoreError(
            f"{path}: the labels have shape {tuple(result.labels.shape)} but the video has "
            f"{shape}; pick the image layer this store was made from"
        )
    settings = dict(result.metadata.get("settings") or {})
    session = TrackingSession(
        frames,
        channel=settings.get("channel"),
        engine=str(settings.get("engine") or "sam2"),
        engine_options=dict(settings.get("engine_options") or {}),
        engine_factory=engine_factory,
        calibration=result.calibration or Calibration(),
        video_path=result.video_path,
    )
    prompts = _saved_prompts(result)
    session.restore_state(
        objects=list(prompts.objects) or list(result.objects),
        prompts=[FramePrompt.from_prompt(p) for p in prompts],
        current=settings.get("current_object"),
        scores=result.scores,
    )
    return session
