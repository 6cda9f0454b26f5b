"""Ctrl-C handling: the first Ctrl-C asks the running job to stop cleanly.

A propagation stops between frames, so the store keeps every finished frame and
the run can be resumed with ``--resume``. A second Ctrl-C aborts at once (the
store is still resumable: frames are only marked done after they are written).
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any, TextIO

__all__ = ["EXIT_INTERRUPTED", "CancelOnInterrupt"]

#: Exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells expect.
EXIT_INTERRUPTED = 130


class CancelOnInterrupt:
    """Context manager turning SIGINT into a :class:`threading.Event`.

    Parameters
    ----------
    message : str, optional
        Printed on the first Ctrl-C.
    stream : file-like, optional
        Where to print (default ``sys.stderr``).

    Examples
    --------
    >>> with CancelOnInterrupt() as stop:  # doctest: +SKIP
    ...     track(video, prompts, out, cancel=stop.event)
    >>> stop.requested  # doctest: +SKIP
    False
    """

    def __init__(
        self,
        message: str = "stopping after the current frame (press Ctrl-C again to abort)",
        *,
        stream: TextIO | None = None,
    ) -> None:
        self.event = threading.Event()
        self.message = message
        self.stream = stream if stream is not None else sys.stderr
        self._previous: Any = None
        self._installed = False

    @property
    def requested(self) -> bool:
        """Whether Ctrl-C was pressed."""
        return self.event.is_set()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()
        print(f"\n{self.message}", file=self.stream, flush=True)

    def __enter__(self) -> CancelOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False
