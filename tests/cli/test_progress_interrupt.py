"""Progress output (bar on a terminal, plain lines in logs) and the Ctrl-C handler."""

from __future__ import annotations

import io
import os
import signal
from types import SimpleNamespace

import pytest

from napari_sam2v.cli.common import format_table
from napari_sam2v.cli.interrupt import CancelOnInterrupt
from napari_sam2v.cli.progress import ProgressPrinter, format_duration


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr("napari_sam2v.cli.progress.time.perf_counter", fake)
    return fake


def test_plain_lines_when_not_a_terminal(clock: FakeClock) -> None:
    stream = io.StringIO()
    progress = ProgressPrinter("tracking", stream=stream, interval=5.0)
    assert not progress.tty
    progress(SimpleNamespace(done=1, total=10))  # t=0: starts the clock, no line yet
    clock.now = 1.0
    progress.update(2, 10)  # too soon for a line
    clock.now = 6.0
    progress.update(6, 10)  # a line with rate and ETA
    clock.now = 8.0
    progress.update(10, 10)  # the last frame always prints
    progress.close()
    assert stream.getvalue().splitlines() == [
        "tracking: 6/10 frames (60%), 0.83 frames/s, ETA 5 s",
        "tracking: 10/10 frames (100%), 1.12 frames/s",
    ]


def test_close_prints_the_last_state_of_an_interrupted_run(clock: FakeClock) -> None:
    stream = io.StringIO()
    progress = ProgressPrinter("tracking", stream=stream)
    progress.update(0, 100)
    clock.now = 2.0
    progress.update(7, 100)
    progress.close()
    assert stream.getvalue().splitlines() == [
        "tracking: 7/100 frames (7%), 3.50 frames/s, ETA 27 s"
    ]


def test_bar_on_a_terminal_shows_rate() -> None:
    stream = io.StringIO()
    with ProgressPrinter("tracking", stream=stream, tty=True) as progress:
        for done in range(1, 6):
            progress.update(done, 5)
    text = stream.getvalue()
    assert "\r" in text and "5/5" in text and "frame/s" in text


def test_quiet_prints_nothing() -> None:
    stream = io.StringIO()
    with ProgressPrinter("tracking", stream=stream, enabled=False) as progress:
        progress.update(5, 5)
    assert stream.getvalue() == ""


@pytest.mark.parametrize(
    ("seconds", "text"), [(4.2, "4 s"), (185, "3 min 05 s"), (7380, "2 h 03 min"), (-1, "0 s")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_first_ctrl_c_cancels_second_aborts() -> None:
    stream = io.StringIO()
    before = signal.getsignal(signal.SIGINT)
    with CancelOnInterrupt(stream=stream) as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested and stop.event.is_set()
        assert "stopping after the current frame" in stream.getvalue()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_format_table_aligns_columns() -> None:
    assert format_table(["a", "long"], [[1, "x"], ["wide", 2]]).splitlines() == [
        "a     long",
        "----  ----",
        "1     x",
        "wide  2",
    ]


def test_bar_on_a_real_pty_even_without_a_reported_size() -> None:
    import pty

    master, slave = pty.openpty()  # a fresh pty reports 0 columns and 0 rows
    try:
        with open(slave, "w", closefd=False) as stream:
            assert stream.isatty()
            with ProgressPrinter("tracking", stream=stream) as progress:
                for done in range(1, 4):
                    progress.update(done, 3)
        text = _drain(master)
    finally:
        os.close(master)
        os.close(slave)
    assert "tracking: 100%" in text and "3/3" in text


def _drain(fd: int, *, quiet: float = 0.5) -> str:
    """Everything readable from ``fd`` (one read may return only the first chunk)."""
    import select

    chunks = []
    while select.select([fd], [], [], quiet)[0]:
        data = os.read(fd, 65536)
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode(errors="replace")
