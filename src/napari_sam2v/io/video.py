"""Frame-accurate, lazy reading of camera videos (mp4, mov, avi, mkv) with PyAV.

Random access uses a frame index (presentation timestamps and keyframes) built once
by demuxing the file without decoding, and cached as JSON in the user cache dir
(``$XDG_CACHE_HOME/napari-sam2v/video-index/`` or ``~/.cache/...``), keyed by the
file's absolute path, size and modification time. A cache file that is unreadable or
inconsistent is ignored and rebuilt. Frame ``i`` is the ``i``-th timestamp in
presentation order, so variable-frame-rate files index correctly; reading it seeks
to the preceding keyframe and decodes forward. Sequential reads reuse the running
decoder (no seek) and a small LRU keeps recently decoded frames.

Frames are returned upright, as a video player shows them: the display rotation
that phones (and some action cameras) record instead of turning the pixels
(90, 180 or 270 degrees) is applied, as ffmpeg's own autorotation does, so the
clicks, masks and trajectories are in the orientation the user sees elsewhere.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from napari_sam2v._files import atomic_write_text
from napari_sam2v.errors import VideoReadError
from napari_sam2v.io.source import VideoMetadata, VideoSource

__all__ = [
    "INDEX_FORMAT",
    "VIDEO_SUFFIXES",
    "PyAVSource",
    "index_cache_dir",
    "load_index",
    "quarter_turns",
]

#: File suffixes opened with PyAV.
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv")


#: Version of the cached frame-index JSON.
INDEX_FORMAT = 1
# Read forward instead of seeking when the wanted frame is this close ahead.
_FORWARD_GAP = 48
# The LRU of decoded frames never holds more than this (8K RGB frames are 100 MB each).
_CACHE_BYTES = 256 * 1024**2


def quarter_turns(rotation: float) -> int:
    """Counter-clockwise quarter turns (``np.rot90``'s ``k``) that make a frame upright.

    Parameters
    ----------
    rotation : float
        The frame's display rotation in degrees, counter-clockwise, as PyAV's
        ``VideoFrame.rotation`` gives it (an iPhone portrait video: -90).

    Returns
    -------
    int
        0 to 3; 0 also for an angle that is not a multiple of 90 degrees (such a
        frame is kept as stored).
    """
    turns = float(rotation) / 90.0
    return int(round(turns)) % 4 if abs(turns - round(turns)) < 1e-3 else 0


def index_cache_dir() -> Path:
    """Directory of the cached video frame indices."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "napari-sam2v" / "video-index"


def _cache_file(path: Path, stat: os.stat_result) -> Path:
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return index_cache_dir() / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")


def _is_int_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    )


def load_index(file: Path, *, path: Path, stat: os.stat_result) -> dict[str, Any] | None:
    """Load and validate a cached frame index; ``None`` when missing or not trustworthy.

    Parameters
    ----------
    file : Path
        The cache file.
    path, stat
        The video it must describe (absolute path, size and mtime must match).
    """
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    try:
        ok = (
            isinstance(data, dict)
            and data.get("format") == INDEX_FORMAT
            and data.get("path") == str(path.resolve())
            and data.get("size") == stat.st_size
            and data.get("mtime_ns") == stat.st_mtime_ns
            and _is_int_list(data.get("pts"))
            and _is_int_list(data.get("keyframes"))
            and _is_int_list(data.get("time_base"))
            and len(data["time_base"]) == 2
            and data["time_base"][0] > 0
            and data["time_base"][1] > 0
            and len(data["pts"]) >= 1
            and all(a < b for a, b in zip(data["pts"], data["pts"][1:], strict=False))
            and len(data["keyframes"]) >= 1
            and data["keyframes"][0] == 0
            and isinstance(data.get("by_count", False), bool)
            and all(0 <= k < len(data["pts"]) for k in data["keyframes"])
            and all(a < b for a, b in zip(data["keyframes"], data["keyframes"][1:], strict=False))
        )
    except (TypeError, KeyError):
        ok = False
    return data if ok else None


def _save_index(file: Path, data: dict[str, Any]) -> None:
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(file, json.dumps(data), fsync=False)
    except OSError:
        return  # a read-only cache only costs a re-index next time


class PyAVSource(VideoSource):
    """A video file read with PyAV, frame-accurately (see module docstring).

    Frames are RGB ``uint8`` arrays of shape ``(H, W, 3)``.

    Parameters
    ----------
    path : Path
        The video file.
    cache_size : int
        Number of decoded frames kept in the LRU.
    channel : int, optional
        Keep only this colour channel (0 = red, 1 = green, 2 = blue).
    """

    def __init__(self, path: Path, *, cache_size: int = 8, channel: int | None = None) -> None:
        import av

        self.path = Path(path)
        self._av = av
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_size = max(1, int(cache_size))
        self._container: Any = None
        self._decoder: Iterator[Any] | None = None
        self._next_index = -1
        #: Display rotation of the frames in degrees, counter-clockwise (0: none).
        self.rotation = 0.0
        #: Frames found undecodable so far (see :meth:`verify`).
        self.bad_frames: set[int] = set()
        stat = self.path.stat()
        cache_file = _cache_file(self.path, stat)
        index = load_index(cache_file, path=self.path, stat=stat)
        if index is None:
            index = self._build_index(stat)
            _save_index(cache_file, index)
        self._pts: list[int] = index["pts"]
        self._pts_to_index = {p: i for i, p in enumerate(self._pts)}
        self._keyframes: list[int] = index["keyframes"]
        self._by_count = bool(index.get("by_count", False))
        num, den = index["time_base"]
        self.time_base = num / den
        n = len(self._pts)
        if n < 2:
            raise VideoReadError(
                f"{self.path}: the video has only 1 frame; tracking needs at least 2 frames"
            )
        first = self._decode_frame(0)
        if channel is not None and not 0 <= channel < 3:
            raise VideoReadError(f"{self.path}: channel {channel} does not exist (RGB video)")
        self._channel = channel
        shape: tuple[int, ...] = (n, *first.shape)
        if channel is not None:
            shape = shape[:3]
        times = self.timestamps
        diffs = np.diff(times)
        interval = float(np.median(diffs)) if len(diffs) else None
        vfr = bool(len(diffs) > 1 and (diffs.max() - diffs.min()) > 0.01 * max(interval or 0, 1e-9))
        meta = VideoMetadata(
            source=str(self.path),
            kind="video",
            fps=index.get("fps") or (1.0 / interval if interval else None),
            frame_interval=interval,
            time_unit="s",
            axes="tyx" if channel is not None else "tyxc",
            variable_frame_rate=vfr,
            extra={
                "codec": index.get("codec", ""),
                "n_keyframes": len(self._keyframes),
                **({"display_rotation": self.rotation} if self.rotation else {}),
            },
        )
        super().__init__(shape, np.uint8, meta)

    @property
    def stored_axes(self) -> str:
        """``"TYXC"``: RGB frames, even when one channel is kept."""
        return "TYXC"

    # -- index ---------------------------------------------------------------------
    def _open(self) -> Any:
        try:
            return self._av.open(str(self.path))
        except self._av.FFmpegError as exc:
            raise VideoReadError(
                f"{self.path}: cannot open the video, the file is truncated, corrupt or "
                f"not a video ({_reason(exc)})"
            ) from exc

    def _build_index(self, stat: os.stat_result) -> dict[str, Any]:
        container = self._open()
        try:
            if not container.streams.video:
                raise VideoReadError(f"{self.path}: the file has no video stream (no frames)")
            stream = container.streams.video[0]
            if stream.codec_context is None:
                raise VideoReadError(f"{self.path}: unsupported video codec")
            entries: list[tuple[int, bool]] = []
            try:
                for packet in container.demux(stream):
                    stamp = packet.pts if packet.pts is not None else packet.dts
                    if stamp is None or packet.size == 0:
                        continue
                    entries.append((int(stamp), bool(packet.is_keyframe)))
            except self._av.FFmpegError as exc:
                if not entries:
                    raise VideoReadError(f"{self.path}: the video is corrupt ({exc})") from exc
            if not entries:
                raise VideoReadError(f"{self.path}: the video has no frames")
            entries = sorted(dict(entries).items())
            pts = [p for p, _ in entries]
            keyframes = [i for i, (_, key) in enumerate(entries) if key] or [0]
            if keyframes[0] != 0:
                keyframes.insert(0, 0)
            rate = stream.average_rate
            by_count = not self._pts_reliable(container, stream, pts)
            return {
                "format": INDEX_FORMAT,
                "path": str(self.path.resolve()),
                "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "time_base": [stream.time_base.numerator, stream.time_base.denominator],
                "pts": pts,
                "keyframes": keyframes,
                "fps": float(rate) if rate else None,
                "codec": stream.codec_context.name,
                "by_count": by_count,
            }
        finally:
            container.close()

    def _pts_reliable(self, container: Any, stream: Any, pts: list[int]) -> bool:
        """Whether decoded frames carry the demuxed timestamps (AVI with B-frames does not).

        The first 32 decoded frames must come out with the first 32 sorted packet
        timestamps; otherwise frames are identified by counting from a keyframe.
        """
        container.seek(pts[0], stream=stream, backward=True, any_frame=False)
        decoded: list[int | None] = []
        try:
            for frame in container.decode(stream):
                decoded.append(frame.pts)
                if len(decoded) >= min(32, len(pts)):
                    break
        except self._av.FFmpegError:
            return True  # a damaged start is reported when the frame is read
        return decoded == pts[: len(decoded)]

    @property
    def timestamps(self) -> np.ndarray:
        """Presentation time of every frame in seconds, from the first frame."""
        pts = np.asarray(self._pts, dtype=np.float64)
        return (pts - pts[0]) * self.time_base

    # -- decoding ------------------------------------------------------------------
    def _restart(self, index: int) -> None:
        if self._container is None:
            self._container = self._open()
            self._container.streams.video[0].thread_type = "AUTO"
        stream = self._container.streams.video[0]
        key = self._keyframes[bisect.bisect_right(self._keyframes, index) - 1]
        self._container.seek(self._pts[key], stream=stream, backward=True, any_frame=False)
        self._decoder = self._container.decode(stream)
        self._next_index = key

    def _decode_frame(self, index: int) -> np.ndarray:
        cached = self._cache.get(index)
        if cached is not None:
            self._cache.move_to_end(index)
            return cached
        fresh = self._decoder is None or not (
            self._next_index <= index <= self._next_index + _FORWARD_GAP
        )
        if fresh:
            self._restart(index)
        try:
            data = self._scan_to(index)
        except self._av.FFmpegError as exc:
            self._decoder = None
            if fresh:
                self.bad_frames.add(index)
                raise self._undecodable(index, exc) from exc
            # a damaged frame between the running decoder and ``index`` is not
            # ``index``'s fault: seek to ``index``'s own keyframe and try again
            self._restart(index)
            try:
                data = self._scan_to(index)
            except self._av.FFmpegError as again:
                self._decoder = None
                self.bad_frames.add(index)
                raise self._undecodable(index, again) from again
        if data is None:
            self._decoder = None
            self.bad_frames.add(index)
            raise VideoReadError(
                f"{self.path}: frame {index} cannot be decoded (missing from the stream: the "
                "file is truncated or has a corrupt segment)"
            )
        return data

    def _undecodable(self, index: int, exc: Exception) -> VideoReadError:
        return VideoReadError(
            f"{self.path}: frame {index} cannot be decoded (corrupt segment: {_reason(exc)})"
        )

    def _scan_to(self, index: int) -> np.ndarray | None:
        """Decode forward from the running decoder to ``index`` (``None``: not found)."""
        assert self._decoder is not None
        for frame in self._decoder:
            if self._by_count:
                got = self._next_index
                self._next_index += 1
            else:
                stamp = frame.pts if frame.pts is not None else frame.dts
                got = self._pts_to_index.get(stamp, -1) if stamp is not None else -1
            if got < index:
                continue
            if got > index:
                self._next_index = got + 1
                return None
            data = frame.to_ndarray(format="rgb24")
            self.rotation = float(getattr(frame, "rotation", 0) or 0)
            turns = quarter_turns(self.rotation)
            if turns:
                data = np.ascontiguousarray(np.rot90(data, turns))
            self._remember(index, data)
            self._next_index = index + 1
            return data
        return None

    def _remember(self, index: int, data: np.ndarray) -> None:
        self._cache[index] = data
        self._cache.move_to_end(index)
        while len(self._cache) > self._cache_size or (
            len(self._cache) > 1 and sum(f.nbytes for f in self._cache.values()) > _CACHE_BYTES
        ):
            self._cache.popitem(last=False)

    def _read(self, index: int) -> np.ndarray:
        data = self._decode_frame(index)
        return data[..., self._channel] if self._channel is not None else data

    def verify(self) -> list[int]:
        """Decode the whole video once and return the indices of undecodable frames.

        Returns
        -------
        list of int
            Sorted indices of frames that could not be decoded (also kept in
            :attr:`bad_frames`).
        """
        with self._lock:
            seen: set[int] = set()
            container = self._open()
            try:
                stream = container.streams.video[0]
                if self._by_count:
                    self._verify_by_count(container, stream, seen)
                else:
                    self._verify_by_pts(container, stream, seen)
            finally:
                container.close()
            bad = set(range(len(self._pts))) - seen
            self.bad_frames |= bad
            return sorted(bad)

    def _verify_by_pts(self, container: Any, stream: Any, seen: set[int]) -> None:
        """Decode packet by packet, so a corrupt segment only costs its own frames."""
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except self._av.FFmpegError:
                return  # the container itself is damaged from here on
            try:
                frames = packet.decode()
            except self._av.FFmpegError:
                continue  # this packet's frame is reported missing
            for frame in frames:
                stamp = frame.pts if frame.pts is not None else frame.dts
                if stamp in self._pts_to_index:
                    seen.add(self._pts_to_index[stamp])

    def _verify_by_count(self, container: Any, stream: Any, seen: set[int]) -> None:
        """Frames without usable timestamps: count until the first decoding error."""
        try:
            for count, _frame in enumerate(container.decode(stream)):
                seen.add(count)
        except self._av.FFmpegError:
            return  # later frames cannot be identified; they are reported as bad

    def close(self) -> None:
        """Close the decoder (it reopens on the next read)."""
        with self._lock:
            if self._container is not None:
                self._container.close()
            self._container = None
            self._decoder = None
            self._next_index = -1

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.update(_container=None, _decoder=None, _next_index=-1, _av=None)
        state["_cache"] = OrderedDict()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import av

        super().__setstate__(state)
        self._av = av


def _reason(exc: Exception) -> str:
    """FFmpeg's words for an error, without its errno and the path said already."""
    return str(getattr(exc, "strerror", None) or exc)
