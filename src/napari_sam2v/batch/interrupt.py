"""How a batch stops: each running video stops after its current frame.

Stopping a batch ends the same way whichever way it is asked for: each running
video stops after the frame it is on (its store keeps every finished frame, so the
next run of the batch resumes it), a video not started yet is not started, and both
are reported as failed, saying so.

- ``run_batch(cancel=event)``: setting the event (the CLI's first Ctrl-C does)
  makes the batch call :func:`request_stop` with its id on every worker.
- A terminal's Ctrl-C reaches every process of the foreground group, so the worker
  processes of the batch's own LocalCluster get it too. :func:`dask_setup`, their
  ``preload``, makes SIGINT stop their videos the same way, instead of killing the
  worker with a KeyboardInterrupt traceback of its own.

Nothing here imports dask: the functions run inside the workers.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

__all__ = ["dask_setup", "request_stop", "stop_event"]

#: The stop event of each batch (by id) this process has seen.
_STOPS: dict[str, threading.Event] = {}
#: Set by SIGINT in a worker of the batch's LocalCluster: every batch stops.
_INTERRUPTED = threading.Event()


def stop_event(batch_id: str) -> threading.Event:
    """The event that stops the videos of one batch in this process.

    Parameters
    ----------
    batch_id : str
        The batch's id (``TaskOptions.batch_id``).

    Returns
    -------
    threading.Event
        Set once the batch is asked to stop (also when that came before this call).
    """
    event = _STOPS.setdefault(batch_id, threading.Event())
    if _INTERRUPTED.is_set():
        event.set()
    return event


def request_stop(batch_id: str) -> None:
    """Stop the videos of batch ``batch_id`` in this process after their current frame.

    Run by the batch on every worker with ``Client.run``.

    Parameters
    ----------
    batch_id : str
        The batch's id.
    """
    stop_event(batch_id).set()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    # no lock here: the handler runs on the main thread, between its bytecodes
    _INTERRUPTED.set()
    for event in list(_STOPS.values()):
        event.set()


def dask_setup(worker: Any) -> None:
    """Make SIGINT stop this worker's videos (dask calls it as the worker starts).

    Parameters
    ----------
    worker : distributed.Worker
        The starting worker (unused: the handler is per process).
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)
