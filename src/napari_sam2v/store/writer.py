"""The single background writer thread that moves frames from the engine to disk.

The engine thread calls :meth:`BackgroundWriter.put`; a bounded queue gives
back-pressure (``put`` blocks when the disk is slower than the engine, so memory
stays bounded). Composing the label image, compressing and writing chunks, fsyncing
and journalling all happen on the writer thread. Time spent blocked in ``put`` is
measured (:attr:`wait_s`) so callers can check that the writer is not the bottleneck.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from napari_sam2v.engines.base import FrameResult
from napari_sam2v.errors import Sam2vError, StoreError

__all__ = ["BackgroundWriter"]

_STOP = object()


class BackgroundWriter:
    """Write :class:`FrameResult` objects on one background thread.

    Parameters
    ----------
    write : callable
        ``write(frame_results)``, called on the writer thread with a list of one or
        more frames, in order (all frames waiting in the queue are passed together,
        so a slow disk gets fewer, larger commits).
    queue_size : int
        Frames that may wait in memory before :meth:`put` blocks.
    name : str
        Thread name (shown in debuggers).

    Notes
    -----
    Use it as a context manager; leaving the block drains the queue, joins the thread
    and re-raises the writer's error, if any, as :class:`StoreError`.
    """

    def __init__(
        self,
        write: Callable[[list[FrameResult]], None],
        *,
        queue_size: int = 4,
        name: str = "sam2v-writer",
    ) -> None:
        self._write = write
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, int(queue_size)))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._closed = False
        #: Seconds the producer spent blocked in :meth:`put`.
        self.wait_s = 0.0
        #: Seconds the writer thread spent writing.
        self.busy_s = 0.0
        #: Frames written so far.
        self.written = 0
        self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while batch[-1] is not _STOP:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = batch[-1] is _STOP
            items = [item for item in batch if item is not _STOP]
            if items and self._error is None:  # after a failure: drain without writing
                start = time.perf_counter()
                try:
                    self._write(items)
                except BaseException as exc:  # re-raised on the producer side
                    self._error = exc
                else:
                    self.written += len(items)
                self.busy_s += time.perf_counter() - start
            if stop:
                return

    def _raise_error(self) -> None:
        exc = self._error
        if exc is None:
            return
        if isinstance(exc, Sam2vError):
            raise exc
        raise StoreError(f"writing the result store failed: {exc}") from exc

    def put(self, result: FrameResult) -> None:
        """Queue a frame for writing, blocking while the queue is full.

        Raises
        ------
        StoreError
            If an earlier write failed (e.g. the disk is full).
        """
        if self._closed:
            raise StoreError("the writer is closed")
        self._raise_error()
        start = time.perf_counter()
        while True:
            try:
                self._queue.put(result, timeout=0.2)
                break
            except queue.Full:
                self._raise_error()
                if not self._thread.is_alive():
                    raise StoreError("the writer thread stopped unexpectedly") from None
        self.wait_s += time.perf_counter() - start

    @property
    def pending(self) -> int:
        """Frames queued but not yet written."""
        return self._queue.qsize()

    def close(self) -> None:
        """Write everything queued, stop the thread and re-raise a write error."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join()
        self._raise_error()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
            return
        try:
            self.close()
        except Sam2vError:
            pass  # the original exception is more informative
