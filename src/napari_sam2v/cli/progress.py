"""Terminal progress for long commands: tqdm on a terminal, plain lines otherwise.

Logs and CI captures get a short line every few seconds (frames done, fps, ETA)
instead of a carriage-return progress bar that turns into one huge line.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

__all__ = ["ProgressPrinter", "format_duration"]


def format_duration(seconds: float) -> str:
    """Format seconds as ``"42 s"``, ``"3 min 05 s"`` or ``"2 h 03 min"``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _terminal_width(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


class ProgressPrinter:
    """Progress of a count towards a total, for the terminal or a log.

    Pass it as the ``progress`` callback of :func:`napari_sam2v.store.track` (it is
    called with an object carrying ``done`` and ``total``), or call
    :meth:`update` with ``(done, total)``; then :meth:`close`.

    Parameters
    ----------
    label : str
        What is being counted, shown before the numbers (e.g. ``"tracking"``).
    unit : str, optional
        Name of one item (default ``"frame"``).
    stream : file-like, optional
        Where to write (default ``sys.stderr``).
    tty : bool, optional
        Force the bar (``True``) or plain lines (``False``); default: whether
        ``stream`` is a terminal.
    interval : float, optional
        Seconds between plain lines (default 5).
    enabled : bool, optional
        ``False`` prints nothing (``--quiet``).
    """

    def __init__(
        self,
        label: str,
        *,
        unit: str = "frame",
        stream: TextIO | None = None,
        tty: bool | None = None,
        interval: float = 5.0,
        enabled: bool = True,
    ) -> None:
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty()) if tty is None and callable(isatty) else bool(tty)
        self.interval = float(interval)
        self.enabled = enabled
        self._bar: Any = None
        self._start: float | None = None
        self._first_done = 0
        self._last_print = 0.0
        self._done = 0
        self._total = 0
        self._printed = -1

    def __call__(self, info: Any) -> None:
        """Report progress from an object with ``done`` and ``total`` attributes."""
        self.update(int(info.done), int(info.total))

    def update(self, done: int, total: int) -> None:
        """Report that ``done`` of ``total`` items are finished."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if self._start is None:
            self._start, self._first_done, self._last_print = now, int(done), now
        self._done, self._total = int(done), int(total)
        if self.tty:
            self._update_bar()
        elif now - self._last_print >= self.interval or done >= total:
            self._last_print = now
            self._print_line(now)

    def _update_bar(self) -> None:
        if self._bar is None:
            from tqdm.auto import tqdm

            # A terminal that reports no size (some ptys) would get no bar at all.
            width = {} if _terminal_width(self.stream) else {"ncols": 100, "nrows": 24}
            self._bar = tqdm(
                total=self._total,
                initial=self._first_done,
                desc=self.label,
                unit=self.unit,
                file=self.stream,
                dynamic_ncols=not width,
                leave=True,
                **width,
            )
        if self._bar.total != self._total:
            self._bar.total = self._total
        self._bar.update(self._done - self._bar.n)

    def rate(self) -> float:
        """Items per second since the first report (0 before two reports)."""
        if self._start is None:
            return 0.0
        elapsed = time.perf_counter() - self._start
        advanced = self._done - self._first_done
        return advanced / elapsed if elapsed > 0 and advanced > 0 else 0.0

    def _print_line(self, now: float) -> None:
        total = max(self._total, 1)
        percent = 100.0 * self._done / total
        rate = self.rate()
        parts = [f"{self.label}: {self._done}/{self._total} {self.unit}s ({percent:.0f}%)"]
        if rate > 0:
            parts.append(f"{rate:.2f} {self.unit}s/s")
            if self._done < self._total:
                parts.append(f"ETA {format_duration((self._total - self._done) / rate)}")
        print(", ".join(parts), file=self.stream, flush=True)
        self._printed = self._done

    def close(self) -> None:
        """Finish the bar (or print the final line if it was not printed)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled and self._start is not None and self._printed != self._done:
            self._print_line(time.perf_counter())
        self._start = None

    def __enter__(self) -> ProgressPrinter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
