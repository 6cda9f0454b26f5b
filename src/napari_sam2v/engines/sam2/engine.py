"""The SAM 2 video engine: transformers' SAM 2 / 2.1 / EdgeTAM behind the Engine API.

Example
-------
>>> from napari_sam2v.engines import create_engine
>>> from napari_sam2v.prompts import Prompt
>>> engine = create_engine("sam2", model="sam2.1-tiny")          # doctest: +SKIP
>>> engine.set_video(frames)                                      # doctest: +SKIP
>>> first = engine.add_prompt(Prompt(frame=0, object_id=1, points=[[120, 80]]))  # doctest: +SKIP
>>> for result in engine.propagate(direction="both"):            # doctest: +SKIP
...     print(result.frame, result.scores[1].object_score_logit)
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Generator
from typing import Any

import numpy as np
import torch

from napari_sam2v.engines.base import (
    Direction,
    Engine,
    EngineInfo,
    FrameResult,
    ObjectScore,
    propagation_order,
)
from napari_sam2v.engines.heap import HeapTrimmer
from napari_sam2v.engines.sam2.fastpath import install_precision
from napari_sam2v.engines.sam2.hiera import install_exact_encoder
from napari_sam2v.engines.sam2.loading import load_model
from napari_sam2v.engines.sam2.registry import DEFAULT_MODEL, PRECISIONS, resolve_model
from napari_sam2v.engines.sam2.runtime import (
    cpu_threads,
    mask_to_model,
    points_to_model,
    preprocess_frame,
    select_device,
    upsample_logits,
)
from napari_sam2v.engines.sam2.session import (
    compact_outputs,
    drop_object,
    encode_pending_memories,
    make_session,
    stored_logits,
)
from napari_sam2v.engines.sam2.shared import install_shared_first_attention
from napari_sam2v.errors import EngineError, PromptError
from napari_sam2v.prompts import Prompt

__all__ = ["NO_OBJECT_LOGIT", "Sam2Engine"]

#: Object score logit reported for an object that has no mask on a frame yet.
NO_OBJECT_LOGIT = -1024.0
_PRECISIONS = {**dict.fromkeys(PRECISIONS), "bfloat16": torch.bfloat16}


class Sam2Engine(Engine):
    """SAM 2 / SAM 2.1 / EdgeTAM video object tracking (transformers, streaming).

    Parameters
    ----------
    model : str or path-like, optional
        Registry name (``"sam2.1-tiny"``, ``"edgetam"``, ... see
        :func:`~napari_sam2v.engines.sam2.registry.list_models`), a transformers
        model folder, or a Meta checkpoint (``sam2.1_hiera_tiny.pt``).
        ``"random-tiny"`` is a random-weight test model (warns).
    device : str, optional
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``
        or ``"mps"``.
    embedding_cache_size : int, optional
        Frames whose image features are kept (LRU); a click on a cached frame
        runs the decoder only.
    precision : {"auto", "float32", "mixed", "fast", "bfloat16"}, optional
        ``"auto"`` (default) is ``"mixed"`` on a CPU with native bf16 and
        ``"float32"`` elsewhere (CUDA and MPS included, where the fast path has
        not been measured); :attr:`info` records the level used.
        ``"float32"`` reproduces transformers' fp32 model. ``"mixed"`` is the fast
        path for CPUs with native bf16 (AVX-512 BF16 or AMX): the cross-attention
        to the memory uses chunked bf16 products with an fp32 softmax and the MLPs
        of the image encoder run in bf16 (see
        :mod:`~napari_sam2v.engines.sam2.fastpath`); masks agree with
        ``"float32"`` to IoU >= 0.99. ``"fast"`` also puts the memory attention's
        self-attention and MLPs and whole encoder blocks in bf16: faster, with a
        larger, documented drift (``docs/performance.md``). Both fall back to
        ``"float32"`` with a warning on a device without native bf16.
        ``"bfloat16"`` runs the whole model under bf16 autocast.
    num_threads : int, optional
        CPU threads used while computing. Default: torch's setting, or 1 for the
        random-tiny test model (its layers are too small to gain from threads).
    memory_frames : int, optional
        Opt-in speed/accuracy trade-off: attend to only this many of the most
        recent tracked frames (plus the prompted frames) instead of the model's
        ``num_maskmem - 1`` (6). Fewer memory keys make propagation faster but
        change the results (measured in ``docs/performance.md``). Default: all.
    progress : bool, optional
        Show a progress bar when weights are downloaded.

    Raises
    ------
    ModelError
        Unknown model name (the message lists the valid ones), unusable folder.
    WeightsNotFoundError
        Weights neither cached nor downloadable.
    CheckpointError
        Corrupt, unsafe or mismatching checkpoint.
    EngineError
        Unknown or unavailable device, invalid option.

    Notes
    -----
    All public methods take an internal lock, so :meth:`prefetch` may run in a
    background thread while the user clicks. A click on a frame that was already
    propagated becomes a conditioning frame (it is kept as the user's correction);
    propagating again from it replaces the downstream frames.
    """

    name = "sam2"

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        device: str = "auto",
        embedding_cache_size: int = 6,
        precision: str = "auto",
        num_threads: int | None = None,
        memory_frames: int | None = None,
        progress: bool = True,
    ) -> None:
        super().__init__()
        if int(embedding_cache_size) < 1:
            raise EngineError(f"embedding_cache_size must be >= 1, got {embedding_cache_size}")
        if precision not in _PRECISIONS:
            raise EngineError(f"precision must be one of {list(_PRECISIONS)}, got {precision!r}")
        if num_threads is not None and int(num_threads) < 1:
            raise EngineError(f"num_threads must be >= 1, got {num_threads}")
        self._source = resolve_model(model)
        self._device = select_device(device)
        if self._source.random_weights:
            warnings.warn(
                "model 'random-tiny' has random weights: its masks are meaningless "
                "(for tests and benchmarks only)",
                UserWarning,
                stacklevel=3,
            )
        self._threads = (
            int(num_threads)
            if num_threads is not None
            else 1
            if self._source.random_weights
            else None
        )
        self._lock = threading.RLock()
        with cpu_threads(self._threads):
            self._loaded = load_model(self._source, progress=progress)
        self._model = self._loaded.model.to(self._device)
        install_exact_encoder(self._model)  # bit-identical, skips transformers' dead work
        config = self._model.config
        self._image_size = int(config.image_size)
        self._num_maskmem = int(config.num_maskmem)
        if memory_frames is not None and not 1 <= int(memory_frames) < self._num_maskmem:
            raise EngineError(
                f"memory_frames must be between 1 and {self._num_maskmem - 1} for this model, "
                f"got {memory_frames}"
            )
        self._memory_frames = None if memory_frames is None else int(memory_frames)
        self._model.memory_frames = self._memory_frames
        self._architecture = str(config.model_type)
        self._cache_size = int(embedding_cache_size)
        self._precision, self._fast_modules = install_precision(
            self._model, precision, self._device
        )
        # bit-identical: the objects of a frame share the first self-attention
        install_shared_first_attention(self._model)
        self._closed = False
        self._session: Any = None
        self._prompts: dict[tuple[int, int], Prompt] = {}
        self._iou: dict[tuple[int, int], float] = {}
        # (object id, frame) of clicks whose memory is encoded lazily (see _flush_memory)
        self._pending: set[tuple[int, int]] = set()
        self._iou_calls: list[torch.Tensor] = []
        self._model.mask_decoder.register_forward_hook(self._record_iou)

    # -- internals -----------------------------------------------------------------
    def _record_iou(self, module: Any, args: Any, output: Any) -> None:
        self._iou_calls.append(output[1].detach())

    def _compute(self) -> Any:
        """Context for model calls: threads, no autograd, optional bf16 autocast."""
        from contextlib import ExitStack

        stack = ExitStack()
        stack.enter_context(cpu_threads(self._threads))
        stack.enter_context(torch.inference_mode())
        dtype = _PRECISIONS[self._precision]
        if dtype is not None:
            stack.enter_context(torch.autocast(self._device.type, dtype=dtype))
        return stack

    def _check_open(self) -> None:
        if self._closed:
            raise EngineError("the engine is closed; create a new one")

    def _load_frame(self, index: int) -> torch.Tensor:
        return preprocess_frame(self.frames.rgb_frame(index), self._image_size, self._device)

    def _on_video_set(self) -> None:
        self._check_open()
        with self._lock:
            self._session = make_session(
                self._architecture,
                loader=self._load_frame,
                n_frames=self.n_frames,
                frame_shape=self.frame_shape,
                device=self._device,
                cache_size=self._cache_size,
            )
            self._prompts.clear()
            self._iou.clear()
            self._pending.clear()

    def _require_session(self) -> Any:
        self._check_open()
        if self._session is None:
            raise EngineError("no video: call set_video(frames) first")
        return self._session

    def _encode(self, frame: int) -> None:
        session = self._require_session()
        if session.cache.get_vision_features(frame) is None:
            self._model._prepare_vision_features(session, frame, 1)

    # -- API -----------------------------------------------------------------------
    @property
    def object_ids(self) -> list[int]:
        """Ids of objects that have at least one prompt, sorted."""
        return sorted({oid for _, oid in self._prompts})

    @property
    def info(self) -> EngineInfo:
        """Provenance: model, weights fingerprint, device and settings."""
        return EngineInfo(
            engine=self.name,
            model=self._source.name,
            model_hash=self._loaded.model_hash,
            device=str(self._device),
            random_weights=self._loaded.random_weights,
            settings={
                "description": self._loaded.description,
                "image_size": self._image_size,
                "num_maskmem": self._num_maskmem,
                "precision": self._precision,
                "fast_attention_modules": self._fast_modules,
                "memory_frames": self._memory_frames,
                "embedding_cache_size": self._cache_size,
                "num_threads": self._threads,
            },
        )

    def prefetch(self, frame: int) -> None:
        """Encode ``frame`` now so that a later click on it is decoder-only.

        Safe to call from a background thread; a frame that cannot be read raises
        the same error a click would.
        """
        with self._lock:
            self._require_session()
            frame = self.check_frame(frame)
            with self._compute():
                self._encode(frame)

    def add_prompt(self, prompt: Prompt) -> FrameResult:
        """Add (or replace) one object's prompt on a frame; return that frame's masks.

        See :meth:`Engine.add_prompt`. A mask prompt cannot be combined with points
        or a box.
        """
        with self._lock:
            session = self._require_session()
            self.check_prompt(prompt)
            if prompt.mask is not None and (prompt.points is not None or prompt.box is not None):
                raise PromptError(
                    f"prompt (frame {prompt.frame}, object {prompt.object_id}): a mask prompt "
                    "cannot be combined with points or a box; send them as separate prompts"
                )
            frame, oid = prompt.frame, prompt.object_id
            with self._compute():
                self._encode(frame)  # raises for unreadable frames before any state changes
                is_new = oid not in session._obj_id_to_idx
                obj_idx = session.obj_id_to_idx(oid)
                try:
                    self._apply_prompt(session, obj_idx, prompt)
                except Exception:
                    if is_new:
                        self._drop_object(oid)
                    raise
            self._prompts[(frame, oid)] = prompt
            return self._stored_result(frame)

    def _apply_prompt(self, session: Any, obj_idx: int, prompt: Prompt) -> None:
        frame = prompt.frame
        if prompt.mask is not None:
            session.remove_point_inputs(obj_idx, frame)
            session.add_mask_inputs(
                obj_idx, frame, mask_to_model(prompt.mask, self._image_size, self._device)
            )
        else:
            session.remove_mask_inputs(obj_idx, frame)
            session.add_point_inputs(
                obj_idx,
                frame,
                points_to_model(prompt, self.frame_shape, self._image_size, self._device),
            )
        point_inputs = session.point_inputs_per_obj[obj_idx].get(frame)
        mask_inputs = session.mask_inputs_per_obj[obj_idx].get(frame)
        is_init = frame not in session.frames_tracked_per_obj[obj_idx]
        if not is_init:
            self._flush_memory()  # this click attends to the memory of earlier clicks
        self._iou_calls.clear()
        extra = {}
        if self._architecture == "edgetam_video":
            # EdgeTAM has no deferred memory encoding: encode it with the click
            extra["run_mem_encoder"] = True
        out = self._model._run_single_frame_inference(
            inference_session=session,
            frame_idx=frame,
            obj_idx=obj_idx,
            batch_size=1,
            is_init_cond_frame=is_init,
            point_inputs=point_inputs,
            mask_inputs=mask_inputs,
            reverse=False,
            streaming=False,
            **extra,
        )
        outputs = session.output_dict_per_obj[obj_idx]
        outputs["non_cond_frame_outputs"].pop(frame, None)
        session.store_output(obj_idx, frame, output_value=out, is_conditioning_frame=True)
        oid = session.obj_idx_to_id(obj_idx)
        self._pending.add((oid, frame))
        iou = 1.0 if mask_inputs is not None else float(self._iou_calls[-1].max())
        self._iou[(oid, frame)] = iou

    def _flush_memory(self) -> None:
        """Encode the memory of clicks not encoded yet (deferred: a click costs the decoder)."""
        encode_pending_memories(self._model, self._session, self._pending)
        self._pending.clear()

    def _stored_result(self, frame: int) -> FrameResult:
        """Masks of every object on ``frame`` from what the session still holds."""
        session = self._session
        result = FrameResult(frame=frame)
        for oid in self.object_ids:
            stored = stored_logits(session, oid, frame)
            if stored is None:
                result.masks[oid] = np.zeros(self.frame_shape, dtype=bool)
                result.scores[oid] = ObjectScore(NO_OBJECT_LOGIT, float("nan"))
                continue
            logits, score = stored
            result.masks[oid] = upsample_logits(logits, self._image_size, self.frame_shape)[0]
            result.scores[oid] = ObjectScore(score, self._iou.get((oid, frame), float("nan")))
        return result

    def propagate(
        self,
        *,
        start: int | None = None,
        direction: str | Direction = Direction.FORWARD,
        frame_range: tuple[int, int] | None = None,
        cancel: threading.Event | None = None,
    ) -> Generator[FrameResult, None, None]:
        """Propagate every object through the video (see :meth:`Engine.propagate`).

        Raises
        ------
        EngineError
            No video, no prompt, or a start/range outside the video (raised here,
            before the first frame).
        """
        with self._lock:
            self._require_session()
            direction = Direction.parse(direction)
            prompted = sorted({f for f, _ in self._prompts})
            first = self.resolve_start(start, direction, prompted)
            order = propagation_order(self.n_frames, first, direction, frame_range)
        return self._propagate(order, first, cancel)

    def _propagate(
        self, order: list[tuple[int, Direction]], first: int, cancel: threading.Event | None
    ) -> Generator[FrameResult, None, None]:
        heap = HeapTrimmer()  # keeps the resident set flat on long videos
        for frame, pass_direction in order:
            if cancel is not None and cancel.is_set():
                return
            with self._lock:
                session = self._require_session()
                if not self._prompts:
                    raise EngineError("every prompt was removed during propagation")
                with self._compute():
                    self._flush_memory()
                    result = self._track(session, frame, pass_direction is Direction.BACKWARD)
                compact_outputs(session, keep_near=(frame, first), window=self._num_maskmem)
                heap.frame_done()
            yield result

    def _track(self, session: Any, frame: int, reverse: bool) -> FrameResult:
        self._iou_calls.clear()
        reused = [
            frame in session.output_dict_per_obj[idx]["cond_frame_outputs"]
            for idx in range(session.get_obj_num())
        ]
        output = self._model(inference_session=session, frame_idx=frame, reverse=reverse)
        masks = upsample_logits(output.pred_masks, self._image_size, self.frame_shape)
        logits = output.object_score_logits.reshape(-1).float().cpu().numpy()
        calls = iter(self._iou_calls)
        result = FrameResult(frame=frame)
        for idx, oid in enumerate(output.object_ids):
            if reused[idx]:
                iou = self._iou.get((oid, frame), float("nan"))
            else:
                call = next(calls, None)
                iou = float("nan") if call is None else float(call.max())
                self._iou[(oid, frame)] = iou
            result.masks[oid] = masks[idx]
            result.scores[oid] = ObjectScore(float(logits[idx]), iou)
        return result

    def remove_object(self, object_id: int) -> None:
        """Forget an object, its prompts and its results (see :meth:`Engine.remove_object`)."""
        with self._lock:
            self._require_session()
            self.check_object(object_id)
            for key in [k for k in self._prompts if k[1] == object_id]:
                del self._prompts[key]
            self._drop_object(object_id)

    def _drop_object(self, object_id: int) -> None:
        drop_object(self._session, object_id)
        self._iou = {k: v for k, v in self._iou.items() if k[0] != object_id}
        self._pending = {k for k in self._pending if k[0] != object_id}

    def clear_frame(self, frame: int, object_id: int | None = None) -> None:
        """Remove the prompts on ``frame`` (of one object or all objects).

        An object left without any prompt is removed.
        """
        with self._lock:
            session = self._require_session()
            frame = self.check_frame(frame)
            if object_id is not None:
                self.check_object(object_id)
            targets = [oid for f, oid in self._prompts if f == frame]
            if object_id is not None:
                targets = [oid for oid in targets if oid == object_id]
            for oid in targets:
                del self._prompts[(frame, oid)]
                self._pending.discard((oid, frame))
                idx = session.obj_id_to_idx(oid)
                session.remove_point_inputs(idx, frame)
                session.remove_mask_inputs(idx, frame)
                session.output_dict_per_obj[idx]["cond_frame_outputs"].pop(frame, None)
                session.frames_tracked_per_obj[idx].pop(frame, None)
                if oid not in self.object_ids:
                    self._drop_object(oid)

    def reset(self) -> None:
        """Drop every prompt and result; keep the video, the model and cached features."""
        with self._lock:
            session = self._require_session()
            session.reset_tracking_data()
            self._prompts.clear()
            self._iou.clear()
            self._pending.clear()

    def close(self) -> None:
        """Release the model, the session and the caches."""
        with self._lock:
            self._closed = True
            self._session = None
            self._prompts.clear()
            self._model = None
