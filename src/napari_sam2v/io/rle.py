"""Uncompressed COCO run-length encoding of binary masks.

COCO's uncompressed RLE lists run lengths of a mask flattened in **column-major**
(Fortran) order, starting with a run of zeros (possibly of length 0)::

    {"size": [height, width], "counts": [z0, o0, z1, o1, ...]}
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["MAX_PIXELS", "rle_decode", "rle_encode"]

#: Largest mask :func:`rle_decode` accepts (16384 x 16384): a size typed wrong, or a
#: hostile file, must not allocate gigabytes.
MAX_PIXELS = 1 << 28


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """Encode a 2-D boolean mask as uncompressed COCO RLE.

    Parameters
    ----------
    mask : ndarray of shape (H, W)
        Boolean (or 0/1) mask.

    Returns
    -------
    dict
        ``{"size": [H, W], "counts": [int, ...]}``; the counts sum to ``H * W``.

    Examples
    --------
    >>> rle_encode(np.array([[0, 1], [0, 1]], bool))
    {'size': [2, 2], 'counts': [2, 2]}
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    flat = mask.astype(bool).ravel(order="F")
    if flat.size == 0:
        return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": []}
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts.insert(0, 0)
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(c) for c in counts]}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """Decode uncompressed COCO RLE back to a boolean mask.

    Raises
    ------
    ValueError
        If ``size`` or ``counts`` are malformed or the counts do not add up.
    """
    try:
        height, width = (int(v) for v in rle["size"])
        counts = [int(c) for c in rle["counts"]]
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"RLE needs 'size' [h, w] and integer 'counts' ({exc})") from None
    if height < 0 or width < 0 or any(c < 0 for c in counts):
        raise ValueError("RLE size and counts must be non-negative")
    if height * width > MAX_PIXELS:
        raise ValueError(
            f"RLE size {height} x {width} is larger than any supported frame "
            f"({MAX_PIXELS} pixels at most)"
        )
    if sum(counts) != height * width:
        raise ValueError(
            f"RLE counts sum to {sum(counts)} but the mask has {height * width} pixels"
        )
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    return flat.reshape((height, width), order="F")
