"""Crash-safe bookkeeping of a result store: the writer lock and the progress journal.

The **lock** (``sam2v/lock.json``) names the writer's pid and host for messages. Where
the OS has ``flock`` (Linux, macOS), the writer also holds an advisory lock on that
file for as long as it writes, and the kernel drops it when the process dies, however
it dies. A lock file nobody holds is stale and recovered, even when its pid now names
another live process: a restarted container reuses pids, so a pid alone cannot tell.
Without ``flock`` (Windows), and for a lock file written without it, the file is
created with ``O_EXCL`` and is stale once its pid no longer runs on this host.

The **progress journal** (``sam2v/progress.jsonl``) gets one line per finished frame,
appended *after* the frame's chunks are written (and fsynced): a frame is done if and
only if it has a valid line. Each line carries a CRC-32 of its content, so a line torn
by a crash is recognised and ignored; a later line for the same frame replaces an
earlier one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: pid-based locks only
    fcntl = None  # type: ignore[assignment]

from napari_sam2v.errors import StoreError, StoreLockedError

__all__ = ["FrameRecord", "ProgressJournal", "StoreLock", "pid_alive"]

# An unreadable lock file older than this is a torn write of a dead process.
_TORN_LOCK_AGE_S = 5.0


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host.

    A zombie (killed, not yet reaped: common in containers whose init does not reap
    orphans) counts as dead, since it can no longer write.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True  # no /proc (macOS, Windows): trust kill()
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


class StoreLock:
    """Exclusive writer lock of one store.

    Parameters
    ----------
    path : Path
        The lock file.
    what : str, optional
        What the lock protects, for messages (default: the store holding ``path``).
    """

    def __init__(self, path: Path, *, what: str | None = None) -> None:
        self.path = path
        self.held = False
        self._fd: int | None = None
        self.what = what or f"{path.parent.parent}: the result store"

    def acquire(self) -> None:
        """Take the lock, recovering a stale one.

        Raises
        ------
        StoreLockedError
            If a live process (or this process, through another store object) holds it.
        """
        if fcntl is None or not _flock_works(self.path.parent):
            self._acquire_exclusive()
            return
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
            except OSError as exc:
                raise self._cannot_lock(exc) from exc
            if not _flock(fd):
                os.close(fd)
                raise StoreLockedError(self._locked_message())
            if not _names(self.path, fd):  # released and removed meanwhile: try again
                os.close(fd)
                continue
            owner = self._owner()
            if owner is not None and not owner.get("flock") and self._pid_holds(owner):
                os.close(fd)  # an older writer, which held no flock, still runs
                raise StoreLockedError(self._locked_message())
            self._fd = fd
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.write(fd, json.dumps({**self._me(), "flock": True}).encode())
            self.held = True
            return
        raise StoreLockedError(self._locked_message())

    def _acquire_exclusive(self) -> None:
        """:meth:`acquire` without ``flock``: an ``O_EXCL`` file, stale when its pid died."""
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._is_stale():
                    self.path.unlink(missing_ok=True)
                    continue
                raise StoreLockedError(self._locked_message()) from None
            except OSError as exc:
                raise self._cannot_lock(exc) from exc
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self._me(), fh)
            self.held = True
            return
        raise StoreLockedError(self._locked_message())

    @staticmethod
    def _me() -> dict[str, Any]:
        return {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}

    def _cannot_lock(self, exc: OSError) -> StoreError:
        return StoreError(f"{self.path.parent.parent}: cannot lock the store ({exc})")

    def check_free(self) -> None:
        """Check, without taking it, that no live writer holds the lock.

        Raises
        ------
        StoreLockedError
            If a live process (or this process, through another store object) holds it.
        """
        if self.path.exists() and not self._is_stale():
            raise StoreLockedError(self._locked_message())

    def _owner(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _is_stale(self) -> bool:
        owner = self._owner()
        if fcntl is not None and _flock_works(self.path.parent):
            if owner is None or owner.get("flock"):
                try:
                    fd = os.open(self.path, os.O_RDONLY)
                except FileNotFoundError:
                    return True
                except OSError:
                    return False
                try:
                    return _flock(fd)  # nobody holds it (the lock is dropped on close)
                finally:
                    os.close(fd)
        if owner is None:
            try:
                age = time.time() - self.path.stat().st_mtime
            except OSError:
                return True
            return age > _TORN_LOCK_AGE_S
        return not self._pid_holds(owner)

    @staticmethod
    def _pid_holds(owner: dict[str, Any]) -> bool:
        """Whether the pid of a lock written without ``flock`` may still write."""
        pid, host = owner.get("pid"), owner.get("host")
        if host != socket.gethostname() or not isinstance(pid, int):
            return True
        return pid == os.getpid() or pid_alive(pid)

    def _locked_message(self) -> str:
        owner = self._owner() or {}
        who = f"process {owner.get('pid', '?')} on {owner.get('host', '?')}"
        return (
            f"{self.what} is being written by {who}; wait for it to finish (or delete "
            f"{self.path} if that process is gone)"
        )

    def release(self) -> None:
        """Release the lock if held."""
        if self.held:
            self.path.unlink(missing_ok=True)  # before the flock goes: see _names()
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self.held = False


def _flock(fd: int) -> bool:
    """Take an exclusive advisory lock on ``fd`` without waiting; False if another holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _flock_works(folder: Path) -> bool:
    """Whether the file system of ``folder`` supports ``flock`` (some network mounts do not)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return True  # the lock file's own open reports the problem
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not unlinked, not replaced)."""
    try:
        return os.path.samestat(os.stat(path), os.fstat(fd))
    except OSError:
        return False


@dataclass(frozen=True)
class FrameRecord:
    """Completion record of one frame.

    Parameters
    ----------
    frame : int
        Frame index.
    objects : tuple of int
        Objects whose masks were written on this frame.
    scores : dict of int to (float, float)
        ``object_id -> (object_score_logit, iou)``; ``nan`` when unknown.
    """

    frame: int
    objects: tuple[int, ...]
    scores: dict[int, tuple[float, float]]


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _encode(record: FrameRecord) -> str:
    body = json.dumps(
        {
            "frame": record.frame,
            "objects": list(record.objects),
            "scores": {
                str(k): [_finite_or_none(a), _finite_or_none(b)]
                for k, (a, b) in sorted(record.scores.items())
            },
        },
        separators=(",", ":"),
        sort_keys=True,
    )
    return f"{zlib.crc32(body.encode()):08x} {body}\n"


def _decode(line: str) -> FrameRecord | None:
    crc, _, body = line.rstrip("\n").partition(" ")
    if len(crc) != 8 or f"{zlib.crc32(body.encode()):08x}" != crc:
        return None
    try:
        data = json.loads(body)
        frame = data["frame"]
        objects = tuple(int(o) for o in data["objects"])
        scores = {
            int(k): (
                float("nan") if v[0] is None else float(v[0]),
                float("nan") if v[1] is None else float(v[1]),
            )
            for k, v in data["scores"].items()
        }
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    if not isinstance(frame, int) or frame < 0:
        return None
    return FrameRecord(frame, objects, scores)


class ProgressJournal:
    """Append-only journal of finished frames (see module docstring).

    Parameters
    ----------
    path : Path
        The ``progress.jsonl`` file.
    fsync : bool
        Flush each line to stable storage before returning from :meth:`append`.
    """

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync
        self._fh: Any = None

    def read(self, n_frames: int | None = None) -> dict[int, FrameRecord]:
        """All valid records, the last one per frame winning; torn lines are skipped."""
        records: dict[int, FrameRecord] = {}
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return records
        for line in raw.decode("utf-8", errors="replace").splitlines():
            record = _decode(line)
            if record is not None and (n_frames is None or record.frame < n_frames):
                records[record.frame] = record
        return records

    def append(self, records: FrameRecord | list[FrameRecord]) -> None:
        """Append one or several records durably (one flush and fsync for all)."""
        if isinstance(records, FrameRecord):
            records = [records]
        if self._fh is None:
            self._repair_tail()
            self._fh = open(self.path, "a", encoding="utf-8")
        self._fh.write("".join(_encode(r) for r in records))
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())

    def _repair_tail(self) -> None:
        """Terminate a torn last line so the next record starts on its own line."""
        try:
            with open(self.path, "rb+") as fh:
                fh.seek(0, os.SEEK_END)
                if fh.tell() == 0:
                    return
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")
        except FileNotFoundError:
            return

    def close(self) -> None:
        """Close the file handle."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
