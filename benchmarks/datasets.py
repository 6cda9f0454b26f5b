"""Videos with reference masks for the accuracy harness: the T98G time-lapse and the reef clip.

The T98G phase-contrast time-lapse (Usiigaci, MIT licence) is read from
``$NAPARI_SAM2V_T98G_DIR``, else from ``shared/data/usiigaci_t98g_phase`` beside the
repository; its masks are a pipeline's output, so scores against them are agreement
with a reference, not accuracy. The reef sample's labels are exact.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["T98G_DIR", "load_reef_truth", "load_t98g", "parse_crop"]


def _find_t98g() -> Path:
    """The Usiigaci T98G folder: $NAPARI_SAM2V_T98G_DIR, else ``shared/`` beside the repo."""
    env = os.environ.get("NAPARI_SAM2V_T98G_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "usiigaci_t98g_phase"


#: The T98G folder used by default.
T98G_DIR = _find_t98g()


def parse_crop(text: str | None) -> tuple[slice, slice]:
    """Row and column slices of a ``"y0:y1,x0:x1"`` crop (everything when empty)."""
    if not text:
        return slice(None), slice(None)
    try:
        rows, cols = text.split(",")
        (r0, r1), (c0, c1) = (tuple(int(v) for v in part.split(":")) for part in (rows, cols))
    except ValueError:
        raise SystemExit(f"--crop must look like y0:y1,x0:x1 (got {text!r})") from None
    return slice(r0, r1), slice(c0, c1)


def load_t98g(
    data_dir: Path = T98G_DIR, *, n_frames: int | None = None, crop: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load the T98G phase-contrast images and their reference instance masks.

    Parameters
    ----------
    data_dir : Path
        Folder with ``images/t98g_phase_T37.tif`` and ``masks/t98g_id_masks_T37.tif``.
    n_frames : int, optional
        Keep the first ``n_frames`` frames.
    crop : str, optional
        ``"y0:y1,x0:x1"`` spatial crop.

    Returns
    -------
    frames, labels : ndarray
        ``(t, y, x)`` uint16 images and uint8 reference ids.
    """
    import tifffile

    key = range(n_frames) if n_frames else None
    images = tifffile.imread(data_dir / "images" / "t98g_phase_T37.tif", key=key)
    masks = tifffile.imread(data_dir / "masks" / "t98g_id_masks_T37.tif", key=key)
    # A single page reads as (y, x): keep the time axis.
    images = images.reshape((-1,) + images.shape[-2:])
    masks = masks.reshape((-1,) + masks.shape[-2:])
    rows, cols = parse_crop(crop)
    return np.ascontiguousarray(images[:, rows, cols]), np.ascontiguousarray(masks[:, rows, cols])


def load_reef_truth(n_frames: int | None, crop: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The bundled reef clip and its exact labels (first ``n_frames``, cropped)."""
    from napari_sam2v.samples import load_reef

    sample = load_reef()
    rows, cols = parse_crop(crop)
    stop = n_frames or None
    frames = np.asarray(sample.frames)[:stop, rows, cols]
    labels = np.asarray(sample.labels)[:stop, rows, cols]
    return np.ascontiguousarray(frames), np.ascontiguousarray(labels)
