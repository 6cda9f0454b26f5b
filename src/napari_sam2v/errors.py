"""Exception hierarchy of napari-sam2v.

Every error the core raises for an *expected* problem (bad input, missing weights,
a locked store, ...) derives from :class:`Sam2vError`. Front ends (the napari widget,
the CLI) catch ``Sam2vError`` and show its message as-is, without a traceback.
Built-in bases (``ValueError``, ``FileNotFoundError``, ...) are mixed in so callers
that catch the standard exceptions keep working.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = [
    "READ_ERRORS",
    "BatchError",
    "CheckpointError",
    "DamagedStoreError",
    "EngineError",
    "ExportError",
    "FrameIndexError",
    "InputError",
    "InputFileNotFoundError",
    "MeasurementCancelledError",
    "ModelError",
    "PromptError",
    "Sam2vError",
    "StoreError",
    "StoreExistsError",
    "StoreLockedError",
    "StoreVersionError",
    "UnsafeCheckpointError",
    "VideoReadError",
    "WeightsNotFoundError",
    "read_errors_as",
    "reading_store",
]


class Sam2vError(Exception):
    """Base class of every expected napari-sam2v error."""


class InputError(Sam2vError, ValueError):
    """Input data (frames, arrays, files) that cannot be used as given."""


class InputFileNotFoundError(InputError, FileNotFoundError):
    """A path given by the user does not exist."""


class VideoReadError(InputError):
    """A video or image file is corrupt, truncated, empty or undecodable."""


class PromptError(InputError):
    """A prompt (point, box, mask) or prompt file is invalid."""


class EngineError(Sam2vError, RuntimeError):
    """The engine was used out of order (no video set, unknown object, ...)."""


class ModelError(Sam2vError):
    """A model cannot be resolved, fetched or built."""


class WeightsNotFoundError(ModelError, FileNotFoundError):
    """Model weights are not cached and cannot be downloaded."""


class CheckpointError(ModelError, ValueError):
    """A checkpoint file is corrupt, truncated or of an unknown architecture."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint would need to execute pickled code to load; refused."""


class StoreError(Sam2vError, OSError):
    """The result store cannot be created, opened or written."""


class DamagedStoreError(StoreError):
    """Part of a result store cannot be read: a chunk or metadata file missing or corrupt."""

    @classmethod
    def reading(
        cls, path: object, what: str, exc: BaseException, *, frame: bool = False
    ) -> DamagedStoreError:
        """The error for ``exc``, raised while reading ``what`` of the store at ``path``.

        ``frame``: ``what`` is one frame's chunks, which resuming the run writes again.
        """
        again = (
            "track it again with --resume (resume=True in Python) and the same video and "
            "prompts, which writes the damaged frames again"
            if frame
            else "track again"
        )
        return cls(
            f"{path}: {what} cannot be read ({type(exc).__name__}: {exc}); the store is "
            f"damaged (a file inside it is missing or corrupt): {again}, or restore it "
            "from a backup"
        )


#: What reading a damaged zarr array raises (a corrupt chunk, a missing file), besides
#: this package's own errors.
READ_ERRORS: tuple[type[BaseException], ...] = (OSError, RuntimeError, ValueError, KeyError)


@contextlib.contextmanager
def read_errors_as(error: Callable[[BaseException], Sam2vError]) -> Iterator[None]:
    """Raise ``error(exc)`` for what reading a damaged array raises (:data:`READ_ERRORS`).

    This package's own errors pass unchanged.
    """
    try:
        yield
    except Sam2vError:
        raise
    except READ_ERRORS as exc:
        raise error(exc) from exc


def reading_store(
    path: object, what: str, *, frame: bool = False
) -> contextlib.AbstractContextManager[None]:
    """:func:`read_errors_as` a :class:`DamagedStoreError` naming ``what`` of ``path``.

    ``frame``: ``what`` is one frame's chunks (see :meth:`DamagedStoreError.reading`).
    """
    return read_errors_as(lambda exc: DamagedStoreError.reading(path, what, exc, frame=frame))


class StoreExistsError(StoreError, FileExistsError):
    """A result store is already at the output path, and no one asked to resume or replace it.

    Its ``path`` attribute is that store; front ends name their own way to resume it.
    """

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


class StoreLockedError(StoreError):
    """Another writer holds the result store."""


class StoreVersionError(StoreError):
    """The result store was written by a newer, unknown format version."""


class BatchError(Sam2vError, RuntimeError):
    """A batch cannot run: no dask.distributed, or the scheduler cannot be reached."""


class MeasurementCancelledError(Sam2vError):
    """A measurement was cancelled before its last frame; no partial table is returned."""


class ExportError(Sam2vError, OSError):
    """Measurement tables or plots cannot be written in the requested format or place."""


class FrameIndexError(InputError, IndexError):
    """A frame index is outside the video (also an ``IndexError`` for array code)."""
