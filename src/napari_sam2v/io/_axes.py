"""Axis order of arrays that carry no axis names (``.npy``, plain zarr arrays).

A 3-D array is ``(t, y, x)``. A 4-D array has its channels either last,
``(t, y, x, c)`` (RGB video frames, ``skimage``), or second, ``(t, c, y, x)``
(microscopy, ``tifffile``, OME-Zarr). An axis looks like channels when it has at
most :data:`FEW_CHANNELS` entries, or at most :data:`MAX_CHANNELS` entries and no
more than a quarter of the smaller side of the frame it would leave. The array is
read ``(t, y, x, c)`` when only its last axis looks like channels and ``(t, c, y, x)``
when only its second one does (transposed lazily, frame by frame); when both or
neither do, it is refused with a message that says how to save it unambiguously,
or give its axes with ``open_video(..., axes=...)``.

``axes=`` (:func:`check_axes`) names the axes of data that does not name them (it
replaces the inference, and completes the axes tifffile leaves unnamed, ``Q`` and
``I``); for data that names its own axes it must agree with them
(:func:`check_file_axes`).
"""

from __future__ import annotations

from collections.abc import Sequence

from napari_sam2v.errors import InputError

__all__ = [
    "FEW_CHANNELS",
    "MAX_CHANNELS",
    "array_axes",
    "check_axes",
    "check_file_axes",
    "fill_unnamed_axes",
    "plain_axes",
]

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
        "a[:, c]) for a (t, c, y, x) array, a[..., c] for (t, y, x, c)), save the array "
        "as an OME-Zarr or ImageJ/OME-TIFF file that names its axes, or give its axes: "
        f"open_video(..., axes='TCYX') or 'TYXC'{volume}"
    )


_AXES_HELP = (
    "one letter per axis, in the data's order: T (time), Y and X exactly once, C "
    "(channels) at most once, e.g. 'TYX', 'TYXC' or 'TCYX'"
)


def check_axes(axes: str, name: str, *, shape: Sequence[int] | None = None) -> str:
    """Validate an ``axes=`` string and return it upper-case.

    Parameters
    ----------
    axes : str
        The axes given by the user (any case).
    name : str
        The file or array named in the error message.
    shape : sequence of int, optional
        The data's shape: ``axes`` must then have one letter per axis.

    Returns
    -------
    str
        ``axes`` in upper case.

    Raises
    ------
    InputError
        If ``axes`` is not a string of the letters T, Y, X (once each) and C (at
        most once), or does not have one letter per axis of ``shape``.

    Examples
    --------
    >>> check_axes("tcyx", "a", shape=(5, 2, 32, 32))
    'TCYX'
    """
    letters = axes.upper() if isinstance(axes, str) else ""
    if (
        set(letters) - set("TCYX")
        or any(letters.count(a) != 1 for a in "TYX")
        or letters.count("C") > 1
    ):
        raise InputError(f"{name}: axes={axes!r} is not valid: give {_AXES_HELP}")
    if shape is not None and len(letters) != len(shape):
        raise InputError(
            f"{name}: axes={axes!r} has {len(letters)} letters but the data has {len(shape)} "
            f"axes (shape {tuple(int(s) for s in shape)}): give {_AXES_HELP}"
        )
    return letters


def _agrees(named: str, given: str) -> bool:
    """Whether a letter a file names (tifffile's alphabet) is the given letter."""
    return named == given or (given == "T" and named in "TZ") or (given == "C" and named in "CS")


def fill_unnamed_axes(named: str, given: str, shape: Sequence[int], name: str) -> str:
    """Axes of a file whose axes are partly unnamed: tifffile's ``Q`` and ``I`` from ``given``.

    Parameters
    ----------
    named : str
        The file's axes as tifffile names them (e.g. ``"QQYX"``, ``"IYXS"``).
    given : str
        Validated ``axes=`` (:func:`check_axes`), one letter per axis of the file.
    shape : sequence of int
        The file's shape (for the message).
    name : str
        The file named in the error message.

    Returns
    -------
    str
        ``named`` with each ``Q`` and ``I`` replaced by the given letter.

    Raises
    ------
    InputError
        If ``given`` has another length, or contradicts an axis the file names
        (its Y and X, or samples ``S`` given as anything but ``C``).
    """
    shape = tuple(int(s) for s in shape)
    if len(given) != len(named):
        raise InputError(
            f"{name}: axes={given!r} has {len(given)} letters but the file's data has "
            f"{len(named)} axes (shape {shape}, {named!r} as tifffile names them): give "
            f"{_AXES_HELP}"
        )
    out = []
    for index, (have, want) in enumerate(zip(named, given, strict=True)):
        if have not in "QI" and not _agrees(have, want):
            raise InputError(
                f"{name}: axes={given!r} contradict the axes the file names, {named!r} "
                f"(shape {shape}; tifffile's Q and I are the unnamed ones): axis {index} is "
                f"{have!r}, not {want!r}"
            )
        out.append(want if have in "QI" else have)
    return "".join(out)


def check_file_axes(given: str, stored: str, name: str) -> None:
    """Refuse ``axes=`` that contradict the axes of data that names its own.

    Parameters
    ----------
    given : str
        Validated ``axes=`` (:func:`check_axes`).
    stored : str
        The data's own axes in their stored order, singleton axes left out: ``T``,
        ``Y``, ``X`` and ``C`` when it has several channels (``"TCYX"`` for an
        OME-Zarr ``(t, c, 1, y, x)`` image, ``"TYXC"`` for a video).
    name : str
        The file named in the error message.

    Raises
    ------
    InputError
        Unless ``given`` is ``stored``, or ``stored`` has no channels and ``given``
        is ``stored`` with a ``C`` (a channel axis of one entry).
    """
    if given == stored or ("C" not in stored and given.replace("C", "") == stored):
        return
    raise InputError(
        f"{name}: axes={given!r} contradict its own axes, {stored!r} (in their stored "
        "order, single-entry axes left out); axes= is for data that does not name its "
        "axes (.npy files, plain zarr arrays, TIFFs without axes metadata, arrays): leave "
        f"it out here, or give {stored!r}"
    )


def array_axes(shape: Sequence[int], axes: str | None, name: str) -> str:
    """The axes of an array without axis names: ``axes`` when given, else inferred.

    Parameters
    ----------
    shape : sequence of int
        The array's shape.
    axes : str or None
        ``axes=`` as given (any case), checked against ``shape`` (:func:`check_axes`).
    name : str
        The file or array named in error messages.

    Returns
    -------
    str
        Upper-case axis letters (:func:`plain_axes` when ``axes`` is ``None``).
    """
    return plain_axes(shape, name) if axes is None else check_axes(axes, name, shape=shape)
