"""The interactive tracking session behind the napari widget (Qt-free).

A :class:`TrackingSession` owns everything an interactive front end needs between
clicks: the engine (built lazily), the objects, the prompts with an undo/redo
history, the binding to an OME-Zarr result store, and propagation with progress and
cancellation. The napari dock widget is a thin view over it: it maps mouse and
keyboard events to session calls and runs the slow ones in worker threads.

Example
-------
>>> import numpy as np
>>> from napari_sam2v.session import TrackingSession
>>> frames = np.zeros((4, 32, 32), np.uint8)
>>> session = TrackingSession(frames, engine="classic")
>>> session.add_object("fish").name
'fish'
"""

from __future__ import annotations

from napari_sam2v.session.binding import bound_session
from napari_sam2v.session.tracking import TrackingSession
from napari_sam2v.session.values import (
    FramePrompt,
    FrameWarning,
    PromptEdit,
    PropagationProgress,
    PropagationSummary,
)

__all__ = [
    "FramePrompt",
    "FrameWarning",
    "PromptEdit",
    "PropagationProgress",
    "PropagationSummary",
    "TrackingSession",
    "bound_session",
]
