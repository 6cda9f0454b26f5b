"""SAM 2 on CPU: per-frame time, agreement, click latency and peak RSS, one case per process.

A *case* is a dict; :func:`run_case` runs it in the current process:

``runner``
    ``"plain"``: transformers' own ``Sam2VideoModel`` / ``EdgeTamVideoModel`` and
    inference session (all frames preprocessed up front, fp32, SDPA attention), the
    baseline of issue 9. ``"engine"``: :class:`~napari_sam2v.engines.sam2.Sam2Engine`.
``model``
    ``"random-tiny"`` or a random-weight folder of a real architecture
    (``"sam2.1-tiny-arch"``, ``"edgetam-arch"``; see
    :func:`benchmarks.bench_engine._random_model_folder`).
``precision``, ``memory_frames``, ``threads``, ``objects``, ``frames``, ``size``, ``clicks``
    Engine precision and memory frames, CPU threads, number of objects,
    propagated frames, frame size (``"480p"`` / ``"1080p"``) and the number of
    timed clicks on an encoded frame.

If the case names a ``masks`` path (``.npz``), the masks of every frame are kept
and written there so that runs can be compared (:func:`mask_agreement`); leave it
out when measuring memory. If it names a ``trace`` path, the engine runner appends
one JSON line per propagated frame to it (frame, seconds, current and peak RSS),
flushed at once, so a long memory run that is stopped early still leaves its curve.
The per-frame times include reading and preprocessing the frame. Frames come from
:class:`benchmarks.bench_engine.LazyDisks`.

Run one case from the shell::

    python -m benchmarks.bench_sam2_speed '{"runner": "engine", "precision": "mixed", ...}'

and summarise a traced run, finished or stopped, from its trace::

    python -m benchmarks.bench_sam2_speed --trace '{"trace": "run.jsonl", ...}'
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_engine import (
    SIZES,
    LazyDisks,
    _random_model_folder,
    peak_rss_mib,
    rss_mib,
)

__all__ = ["mask_agreement", "read_trace", "run_case", "steady"]

#: Frames after the prompt before the memory bank is full (num_maskmem = 7).
FULL_BANK = 7


def steady(per_frame: list[float]) -> float:
    """Median seconds per frame once the memory bank is full (else over all frames)."""
    tail = per_frame[FULL_BANK:]
    return statistics.median(tail or per_frame)


def _model_path(name: str, root: Path) -> str:
    return name if name == "random-tiny" else str(_random_model_folder(name, root))


def _plain(case: dict[str, Any], video: LazyDisks, root: Path) -> dict[str, Any]:
    """transformers' session, unmodified: the baseline."""
    import torch

    from napari_sam2v.engines.frames import FrameNormalizer
    from napari_sam2v.engines.sam2.runtime import preprocess_frame, upsample_logits

    if case["model"] == "edgetam-arch":
        from transformers import EdgeTamVideoModel as Model
        from transformers.models.edgetam_video.modeling_edgetam_video import (
            EdgeTamVideoInferenceSession as Session,
        )
    else:
        from transformers import Sam2VideoModel as Model
        from transformers.models.sam2_video.modeling_sam2_video import (
            Sam2VideoInferenceSession as Session,
        )
    if case["model"] == "random-tiny":
        from napari_sam2v.engines.sam2.loading import load_model
        from napari_sam2v.engines.sam2.registry import resolve_model

        ours = load_model(resolve_model("random-tiny"), progress=False).model
        model = Model(ours.config).eval()
        model.load_state_dict(ours.state_dict())
    else:
        model = Model.from_pretrained(_model_path(case["model"], root)).eval()
    size = int(model.config.image_size)
    normalizer = FrameNormalizer(video)
    frame_shape = video.shape[1:3]
    session = Session(
        video=None,
        video_height=frame_shape[0],
        video_width=frame_shape[1],
        dtype=torch.float32,
    )
    for t in range(video.shape[0]):
        session.add_new_frame(preprocess_frame(normalizer.rgb_frame(t), size, torch.device("cpu")))
    scale = np.array([size / frame_shape[1], size / frame_shape[0]], dtype=np.float32)
    for k in range(case["objects"]):
        cy, cx = video.centre(0, k)
        idx = session.obj_id_to_idx(k + 1)
        coords = torch.from_numpy(np.array([[[[cx, cy]]]], dtype=np.float32) * scale)
        session.add_point_inputs(
            idx, 0, {"point_coords": coords, "point_labels": torch.ones(1, 1, 1, dtype=torch.int32)}
        )
    session.obj_with_new_inputs = list(range(1, case["objects"] + 1))
    masks, per_frame = {}, []
    with torch.inference_mode():
        model(session, frame_idx=0)
        t0 = time.perf_counter()
        for out in model.propagate_in_video_iterator(session, start_frame_idx=0):
            masks[out.frame_idx] = upsample_logits(out.pred_masks, size, frame_shape)
            now = time.perf_counter()
            per_frame.append(now - t0)
            t0 = now
    return {"per_frame": per_frame[1:], "masks": masks}


def _engine(case: dict[str, Any], video: LazyDisks, root: Path) -> dict[str, Any]:
    from napari_sam2v.engines.sam2 import Sam2Engine
    from napari_sam2v.prompts import Prompt

    engine = Sam2Engine(
        model=_model_path(case["model"], root),
        device="cpu",
        precision=case.get("precision", "float32"),
        num_threads=case.get("threads"),
        memory_frames=case.get("memory_frames"),
        progress=False,
    )
    engine.set_video(video)

    def prompt(frame: int, k: int) -> Prompt:
        cy, cx = video.centre(frame, k)
        return Prompt(frame=frame, object_id=k + 1, points=[[cx, cy]])

    for k in range(case["objects"]):
        engine.add_prompt(prompt(0, k))
    clicks = []
    for i in range(case.get("clicks", 0)):  # repeated clicks on the encoded frame 0
        t0 = time.perf_counter()
        engine.add_prompt(prompt(0, i % case["objects"]))
        clicks.append(time.perf_counter() - t0)
    masks, per_frame, peaks = {}, [], []
    keep = bool(case.get("masks"))  # held masks would dominate a memory measurement
    trace = open(case["trace"], "a", encoding="utf-8") if case.get("trace") else None
    t0 = time.perf_counter()
    try:
        for result in engine.propagate():
            now = time.perf_counter()
            per_frame.append(now - t0)
            peaks.append(peak_rss_mib())  # the curve shows whether the peak levels off
            if trace is not None:
                line = {"frame": result.frame, "s": per_frame[-1], "rss_mib": rss_mib()}
                trace.write(json.dumps({**line, "peak_rss_mib": peaks[-1]}) + "\n")
                trace.flush()
            if keep:
                masks[result.frame] = np.stack([result.masks[i] for i in sorted(result.masks)])
            t0 = now
    finally:
        if trace is not None:
            trace.close()
    info = engine.info.settings
    engine.close()
    out: dict[str, Any] = {
        "per_frame": per_frame[1:],
        "masks": masks,
        "settings": info,
        "peak_rss_mib_per_frame": peaks,
    }
    if clicks:
        out["click_s_median"] = statistics.median(clicks)
        out["click_s_p95"] = float(np.percentile(clicks, 95))
    return out


def run_case(case: dict[str, Any], model_root: Path) -> dict[str, Any]:
    """Run one case in this process; return its measurements (masks saved to ``case['masks']``)."""
    import torch

    warnings.simplefilter("ignore")
    if case.get("threads"):
        torch.set_num_threads(int(case["threads"]))
    video = LazyDisks(case["frames"] + 1, SIZES[case["size"]], case["objects"])
    t0 = time.perf_counter()
    run = _plain if case["runner"] == "plain" else _engine
    result = run(case, video, model_root)
    total = time.perf_counter() - t0
    masks = result.pop("masks")
    if case.get("masks"):
        np.savez_compressed(case["masks"], **{str(k): np.packbits(v) for k, v in masks.items()})
    per_frame = result["per_frame"]
    return {
        **case,
        **result,
        "s_per_frame_steady": steady(per_frame),
        "s_per_frame_mean": statistics.fmean(per_frame),
        "total_s": total,
        "peak_rss_mib": peak_rss_mib(),
        "torch_threads": torch.get_num_threads(),
    }


def mask_agreement(path_a: str | Path, path_b: str | Path) -> dict[str, float]:
    """Per-frame IoU between two runs' masks (``.npz`` written by :func:`run_case`).

    Empty-vs-empty counts as IoU 1. Returns the minimum and mean IoU and the
    fraction of differing pixels.
    """
    a, b = np.load(path_a), np.load(path_b)
    if sorted(a.files) != sorted(b.files):
        raise ValueError(f"{path_a} and {path_b} hold different frames")
    ious, diffs = [], []
    for key in a.files:
        x, y = np.unpackbits(a[key]).astype(bool), np.unpackbits(b[key]).astype(bool)
        union = np.count_nonzero(x | y)
        ious.append(1.0 if union == 0 else np.count_nonzero(x & y) / union)
        diffs.append(np.count_nonzero(x ^ y) / x.size)
    return {"iou_min": float(min(ious)), "iou_mean": float(np.mean(ious)), "diff_max": max(diffs)}


def read_trace(case: dict[str, Any]) -> dict[str, Any]:
    """The measurements of a case's ``trace`` file, for a run that may have been stopped.

    Parameters
    ----------
    case : dict
        The case that was run, naming its ``trace`` path.

    Returns
    -------
    dict
        The case plus ``frames_done`` (frames propagated, the prompted frame
        included), ``per_frame`` (seconds, after the first frame, as
        :func:`run_case` reports them), ``peak_rss_mib_per_frame``,
        ``rss_mib_per_frame`` (current RSS after each frame) and ``peak_rss_mib``.
    """
    lines = Path(case["trace"]).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    if not rows:
        raise ValueError(f"{case['trace']}: no frames recorded")
    per_frame = [row["s"] for row in rows]
    return {
        **case,
        "frames_done": len(rows),
        "per_frame": per_frame[1:],
        "s_per_frame_steady": steady(per_frame[1:]),
        "peak_rss_mib_per_frame": [row["peak_rss_mib"] for row in rows],
        "rss_mib_per_frame": [row["rss_mib"] for row in rows],
        "peak_rss_mib": max(row["peak_rss_mib"] for row in rows),
    }


if __name__ == "__main__":
    if sys.argv[1] == "--trace":  # summarise a (possibly stopped) run from its trace
        print(json.dumps(read_trace(json.loads(sys.argv[2]))))
    else:
        spec = json.loads(sys.argv[1])
        print(json.dumps(run_case(spec, Path(sys.argv[2]))))
