"""Streaming inference session with bounded memory for transformers' SAM 2 video models.

transformers' ``Sam2VideoInferenceSession`` keeps every preprocessed frame and every
per-frame output (including 1024x1024 mask logits) for the whole video. Here:

* frames are read lazily: :meth:`StreamingSession.get_frame` preprocesses the
  frame on demand from any array-like;
* image features live in an LRU cache (:class:`FeatureCache`) whose positional
  encodings, identical for every frame, are stored once;
* after every step, :func:`compact_outputs` keeps full memory records only for
  frames the model can still use (the last ``num_maskmem`` frames of the
  propagation front and the neighbourhoods of conditioning frames and of the
  pass start); older frames keep only their object pointer (a few hundred floats),
  their object score and a bit-packed low-resolution mask.

The model subclass from :func:`streaming_model_class` skips such compact records
when it gathers spatial memories, which is exactly what the model does for a frame
that was never tracked.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

import numpy as np
import torch

__all__ = [
    "FeatureCache",
    "compact_outputs",
    "drop_object",
    "encode_pending_memories",
    "make_session",
    "packed_mask",
    "stored_logits",
    "streaming_model_class",
    "unpack_mask",
]

#: Keys kept for frames outside the memory window.
_COMPACT_KEYS = ("object_pointer", "object_score_logits")


class FeatureCache:
    """LRU cache of per-frame image features, API-compatible with transformers' cache.

    Parameters
    ----------
    capacity : int
        Number of frames whose features are kept (at least 1).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, int(capacity))
        self._items: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._shared_pos: list[torch.Tensor] | None = None

    def __contains__(self, frame_idx: object) -> bool:
        return frame_idx in self._items

    def __len__(self) -> int:
        return len(self._items)

    @property
    def frames(self) -> list[int]:
        """Cached frame indices, least recently used first."""
        return list(self._items)

    def _dedupe_pos(self, pos: list[torch.Tensor]) -> list[torch.Tensor]:
        shared = self._shared_pos
        if (
            shared is not None
            and len(shared) == len(pos)
            and all(
                a.shape == b.shape and torch.equal(a, b) for a, b in zip(shared, pos, strict=True)
            )
        ):
            return shared
        self._shared_pos = list(pos)
        return self._shared_pos

    def cache_vision_features(self, frame_idx: int, features: dict) -> None:
        """Store the features of a frame, evicting the least recently used frame."""
        item = dict(features)
        if "vision_pos_embeds" in item:
            item["vision_pos_embeds"] = self._dedupe_pos(list(item["vision_pos_embeds"]))
        self._items[frame_idx] = item
        self._items.move_to_end(frame_idx)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def get_vision_features(self, frame_idx: int) -> dict | None:
        """Return the cached features of a frame (and mark it recently used)."""
        item = self._items.get(frame_idx)
        if item is not None:
            self._items.move_to_end(frame_idx)
        return item

    def clear_all(self) -> None:
        """Forget every cached frame."""
        self._items.clear()
        self._shared_pos = None


@cache
def _session_class(architecture: str) -> type[Any]:
    Base: type[Any]
    if architecture == "edgetam_video":
        from transformers.models.edgetam_video.modeling_edgetam_video import (
            EdgeTamVideoInferenceSession,
        )

        Base = EdgeTamVideoInferenceSession
    else:
        from transformers.models.sam2_video.modeling_sam2_video import (
            Sam2VideoInferenceSession,
        )

        Base = Sam2VideoInferenceSession

    class StreamingSession(Base):
        """Inference session that reads and preprocesses frames lazily."""

        def __init__(
            self,
            *,
            loader: Callable[[int], torch.Tensor],
            n_frames: int,
            frame_shape: tuple[int, int],
            device: torch.device,
            cache_size: int,
        ) -> None:
            super().__init__(
                video=None,
                video_height=frame_shape[0],
                video_width=frame_shape[1],
                inference_device=device,
                inference_state_device=device,
                video_storage_device=device,
                dtype=torch.float32,
                max_vision_features_cache_size=cache_size,
            )
            self.cache = FeatureCache(cache_size)
            self._loader = loader
            self._n_frames = int(n_frames)

        @property
        def num_frames(self) -> int:
            return self._n_frames

        def get_frame(self, frame_idx: int) -> torch.Tensor:
            return self._loader(int(frame_idx))

        def add_new_frame(self, pixel_values: torch.Tensor, frame_idx: int | None = None) -> int:
            raise RuntimeError("StreamingSession reads frames itself; do not add frames")

    StreamingSession.__name__ = f"Streaming{Base.__name__}"
    return StreamingSession


def make_session(
    architecture: str,
    *,
    loader: Callable[[int], torch.Tensor],
    n_frames: int,
    frame_shape: tuple[int, int],
    device: torch.device,
    cache_size: int,
) -> Any:
    """Create a streaming inference session for ``"sam2_video"`` or ``"edgetam_video"``."""
    cls = _session_class(architecture)
    return cls(
        loader=loader,
        n_frames=n_frames,
        frame_shape=frame_shape,
        device=device,
        cache_size=cache_size,
    )


@cache
def streaming_model_class(architecture: str) -> type[Any]:
    """Model class that ignores compact (evicted) records when gathering spatial memory.

    Parameters
    ----------
    architecture : {"sam2_video", "edgetam_video"}

    Returns
    -------
    type
        A subclass of ``Sam2VideoModel`` or ``EdgeTamVideoModel``; its weights,
        config and outputs are those of the parent class. Setting the instance
        attribute ``memory_frames`` to ``k`` makes the model attend to the
        conditioning frames and only the ``k`` most recent tracked frames (an
        approximation: fewer memory keys, faster, results differ).
    """
    Base: type[Any]
    if architecture == "edgetam_video":
        from transformers import EdgeTamVideoModel

        Base = EdgeTamVideoModel
    else:
        from transformers import Sam2VideoModel

        Base = Sam2VideoModel

    class StreamingModel(Base):
        #: At most this many recent non-conditioning frames are attended to
        #: (``None``: the model's ``num_maskmem - 1``); see :func:`set_memory_frames`.
        memory_frames: int | None = None

        def _gather_memory_frame_outputs(self, *args: Any, **kwargs: Any) -> list:
            gathered = super()._gather_memory_frame_outputs(*args, **kwargs)
            limit = self.memory_frames
            return [
                (
                    offset,
                    out
                    if out is not None
                    and "maskmem_features" in out
                    and (limit is None or offset <= limit)
                    else None,
                )
                for offset, out in gathered
            ]

    StreamingModel.__name__ = f"Streaming{Base.__name__}"
    StreamingModel.__qualname__ = StreamingModel.__name__
    return StreamingModel


def packed_mask(pred_masks: torch.Tensor) -> tuple[np.ndarray, tuple[int, ...]]:
    """Bit-pack low-resolution mask logits (``> 0``) for compact storage."""
    binary = (pred_masks.detach() > 0).cpu().numpy()
    return np.packbits(binary.reshape(-1)), tuple(binary.shape)


def unpack_mask(packed: tuple[np.ndarray, tuple[int, ...]]) -> torch.Tensor:
    """Inverse of :func:`packed_mask`: logits of +1 (inside) / -1 (outside)."""
    bits, shape = packed
    flat = np.unpackbits(bits, count=int(np.prod(shape))).astype(np.float32)
    return torch.from_numpy(flat.reshape(shape) * 2.0 - 1.0)


def stored_logits(session: Any, object_id: int, frame: int) -> tuple[torch.Tensor, float] | None:
    """Low-resolution mask logits and object score logit the session holds for a frame.

    Parameters
    ----------
    session : StreamingSession
        The session.
    object_id : int
        A known object id.
    frame : int
        Frame index.

    Returns
    -------
    tuple of (Tensor, float) or None
        ``(logits, score)`` from the full or the compact (bit-packed) record, or
        None when the object has no output on that frame.
    """
    outputs = session.output_dict_per_obj[session.obj_id_to_idx(object_id)]
    out = outputs["cond_frame_outputs"].get(frame) or outputs["non_cond_frame_outputs"].get(frame)
    if out is None:
        return None
    if "pred_masks" in out:
        logits = out["pred_masks"]
    elif "packed_mask" in out:
        logits = unpack_mask(out["packed_mask"])
    else:
        return None
    return logits, float(out["object_score_logits"].reshape(-1)[0])


def drop_object(session: Any, object_id: int) -> None:
    """Remove an object from the session and renumber the others' indices densely.

    transformers' session indexes its per-object tables by a dense object index;
    this rebuilds them without ``object_id``, keeping every other object's inputs,
    outputs and tracked frames. An unknown id is ignored.

    Parameters
    ----------
    session : StreamingSession
        The session.
    object_id : int
        Object to remove.
    """
    if object_id not in session._obj_id_to_idx:
        return
    old_idx = dict(session._obj_id_to_idx)
    keep = [oid for oid in session.obj_ids if oid != object_id]
    tables = (
        "point_inputs_per_obj",
        "mask_inputs_per_obj",
        "output_dict_per_obj",
        "frames_tracked_per_obj",
    )
    old = {name: dict(getattr(session, name)) for name in tables}
    session._obj_id_to_idx.clear()
    session._obj_idx_to_id.clear()
    for name in tables:
        getattr(session, name).clear()
    for new_idx, oid in enumerate(keep):
        session._obj_id_to_idx[oid] = new_idx
        session._obj_idx_to_id[new_idx] = oid
        for name in tables:
            getattr(session, name)[new_idx] = old[name][old_idx[oid]]
    session.obj_ids = list(keep)
    session.obj_with_new_inputs = [o for o in session.obj_with_new_inputs if o != object_id]


def compact_outputs(
    session: Any,
    *,
    keep_near: Iterable[int],
    window: int,
    cond_window: bool = True,
) -> int:
    """Drop what the model can no longer use from the session's per-frame outputs.

    Full records (memory features, mask logits) are kept for frames within
    ``window`` frames of any index in ``keep_near`` (the propagation front and the
    pass start) and, when ``cond_window``, of each object's conditioning frames.
    Every other non-conditioning record is reduced to its object pointer, object
    score and a bit-packed low-resolution mask. Large intermediates
    (``high_res_masks``) are always dropped.

    Parameters
    ----------
    session : StreamingSession
        The session to compact in place.
    keep_near : iterable of int
        Frames whose neighbourhood stays complete.
    window : int
        Neighbourhood radius (the model's ``num_maskmem``).
    cond_window : bool, optional
        Also keep the neighbourhoods of conditioning frames.

    Returns
    -------
    int
        Number of records compacted by this call.
    """
    anchors = sorted(set(keep_near))
    compacted = 0
    for per_obj in session.output_dict_per_obj.values():
        cond = per_obj["cond_frame_outputs"]
        for out in cond.values():
            out.pop("high_res_masks", None)
        near = list(anchors) + (sorted(cond) if cond_window else [])
        non_cond = per_obj["non_cond_frame_outputs"]
        for frame_idx, out in non_cond.items():
            out.pop("high_res_masks", None)
            if "maskmem_features" not in out:
                continue
            if any(abs(frame_idx - a) < window for a in near):
                continue
            record = {k: out[k] for k in _COMPACT_KEYS if k in out}
            if "pred_masks" in out:
                record["packed_mask"] = packed_mask(out["pred_masks"])
            non_cond[frame_idx] = record
            compacted += 1
    return compacted


def encode_pending_memories(model: Any, session: Any, pending: Iterable[tuple[int, int]]) -> None:
    """Encode the memory of prompted frames whose encoding was deferred.

    Memory encoding is deferred from the click (as in Meta's predictor), so that a
    click costs only the mask decoder and repeated clicks on one frame encode once.
    Each ``(object id, frame)`` whose conditioning output still holds its
    high-resolution masks is encoded, one object at a time; the masks are then
    dropped. Entries of deleted objects or already encoded frames are skipped.

    Parameters
    ----------
    model : Sam2VideoModel or EdgeTamVideoModel
    session : StreamingSession
    pending : iterable of (int, int)
        ``(object id, frame)`` pairs.
    """
    for oid, frame in sorted(pending):
        obj_idx = session._obj_id_to_idx.get(oid)
        out = None
        if obj_idx is not None:
            out = session.output_dict_per_obj[obj_idx]["cond_frame_outputs"].get(frame)
        if out is None or "high_res_masks" not in out:
            continue
        model._batch_encode_memories(
            inference_session=session,
            frame_idx=frame,
            objects_needing_memory_encoding=[obj_idx],
            high_res_masks_for_memory=[out.pop("high_res_masks")],
            object_score_logits_for_memory=[out["object_score_logits"]],
            is_mask_from_pts_per_obj=[True],
        )
