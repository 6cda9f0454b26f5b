"""Axis order of arrays that carry no axis names (``.npy``, plain zarr arrays).

A 3-D array is ``(t, y, x)``. A 4-D array has its channels either last,
``(t, y, x, c)`` (RGB video frames, ``skimage``), or second, ``(t, c, y, x)``
(microscopy, ``tifffile``, OME-Zarr). An axis looks like channels when it has at
most :data:`FEW_CHANNELS` entries, or at most :data:`MAX_CHANNELS` entries and no
more than a quarter of the smaller side of the frame it would leave. The array is
read ``(t, y, x, c)`` when only its last axis looks like channels and ``(t, c, y, x)``
when only its second one does (transposed lazily, frame by frame); when both or
neither do, it is refused with a message that says how to save it unambiguously.
"""

from __future__ import annotations

from collections.abc import Sequence

from napari_sam2v.errors import InputError

__all__ = ["FEW_CHANNELS", "MAX_CHANNELS", "plain_axes"]

#: An axis this short is channels wherever it is (grey + alpha, RGB, RGBA, 4 dyes).
FEW_CHANNELS = 4
#: The longest axis read as channels (when the frame is at least 4 times larger).
MAX_CHANNELS = 16


def _looks_like_channels(n: int, frame: Sequence[int]) -> bool:
    return n <= FEW_CHANNELS or (n <= MAX_CHANNELS and 4 * n <= min(frame))


def plain_axes(shape: Sequence[int], name: str) -> str:
    """The axes (``"TYX"``, ``"TYXC"`` or ``"TCYX"``) of an array without axis names.

    Parameters
    ----------
    shape : sequence of int
        The array's shape, 3-D or 4-D.
    name : str
        The file or array named in the error message.

    Returns
    -------
    str
        Upper-case axis letters, one per axis of ``shape``.

    Raises
    ------
    InputError
        If ``shape`` is not 3-D or 4-D, or a 4-D shape does not tell its channel
        axis (see the module docstring).

    Examples
    --------
    >>> plain_axes((10, 480, 640, 3), "a"), plain_axes((10, 2, 480, 640), "a")
    ('TYXC', 'TCYX')
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == 3:
        return "TYX"
    if len(shape) != 4:
        raise InputError(f"{name}: a video needs axes (t, y, x) or (t, y, x, c); got shape {shape}")
    _, a, b, c = shape
    last = _looks_like_channels(c, (a, b))
    second = _looks_like_channels(a, (b, c))
    if last and not second:
        return "TYXC"
    if second and not last:
        return "TCYX"
    if last:
        why = "axis 1 and axis 3 could both be channels"
        volume = ""
    else:
        why = "neither axis 1 nor axis 3 looks like channels"
        volume = "; a (t, z, y, x) volume series cannot be tracked: save one plane, a[:, z]"
    raise InputError(
        f"{name}: cannot tell the channel axis of the 4-D array of shape {shape}: {why} (at "
        f"most {FEW_CHANNELS} entries, or at most {MAX_CHANNELS} and a quarter of the frame's "
        "smaller side). Save the channel to track as a (t, y, x) array (np.save(path, "
        "a[:, c]) for a (t, c, y, x) array, a[..., c] for (t, y, x, c)), or save the array "
        f"as an OME-Zarr or ImageJ/OME-TIFF file that names its axes{volume}"
    )
