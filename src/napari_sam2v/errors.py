"""Exception hierarchy of napari-sam2v.

Every error the core raises for an *expected* problem (bad input, missing weights,
a locked store, ...) derives from :class:`Sam2vError`. Front ends (the napari widget,
the CLI) catch ``Sam2vError`` and show its message as-is, without a traceback.
Built-in bases (``ValueError``, ``FileNotFoundError``, ...) are mixed in so callers
that catch the standard exceptions keep working.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "EngineError",
    "InputError",
    "InputFileNotFoundError",
    "ModelError",
    "PromptError",
    "Sam2vError",
    "StoreError",
    "StoreLockedError",
    "StoreVersionError",
    "UnsafeCheckpointError",
    "VideoReadError",
    "WeightsNotFoundError",
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


class StoreLockedError(StoreError):
    """Another writer holds the result store."""


class StoreVersionError(StoreError):
    """The result store was written by a newer, unknown format version."""
