"""The bad-input corpus: every kind of broken input and the exact error it must get.

Each :class:`Case` builds its input under a scratch folder and returns a
:class:`TrackCall` that runs it through the public API (``track`` with the classic
engine, which calls ``open_video`` and ``Prompts.load``). ``docs/reliability.md``
lists the same table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_sam2v.errors import (
    InputError,
    InputFileNotFoundError,
    PromptError,
    VideoReadError,
)
from napari_sam2v.store.pipeline import track
from tests.conftest import make_disk_video
from tests.reliability.media import (
    corrupt_packet,
    write_empty_stream_mp4,
    write_noise_mp4,
)


@dataclass(frozen=True)
class TrackCall:
    """A ``track`` call with the classic engine: the bad input and where it would write."""

    video: Any
    prompts: Any
    out: Path

    def __call__(self, **kwargs: Any) -> Any:
        """Run ``track(video, prompts, out, engine="classic", **kwargs)``."""
        return track(self.video, self.prompts, self.out, engine="classic", **kwargs)


@dataclass(frozen=True)
class Case:
    """One bad input: how to build it, and the error it must raise.

    Parameters
    ----------
    id : str
        Test id.
    build : callable
        ``build(scratch, workdir) -> TrackCall``; ``workdir`` holds ``video.npy`` and
        ``prompts.json`` (the good inputs).
    error : type
        Exact exception class expected.
    match : str
        Regular expression the message must contain.
    early : bool
        Whether the input is rejected before any store is opened (so even
        ``overwrite=True`` must leave an existing store alone).
    """

    id: str
    build: Callable[[Path, Path], TrackCall]
    error: type[Exception]
    match: str
    early: bool = True


def _video_case(make: Callable[[Path], Any]) -> Callable[[Path, Path], TrackCall]:
    """The input goes through ``track`` (video bad, prompts good)."""

    def build(scratch: Path, work: Path) -> TrackCall:
        return TrackCall(make(scratch), work / "prompts.json", scratch / "out.zarr")

    return build


def _prompt_case(make: Callable[[Path], Path]) -> Callable[[Path, Path], TrackCall]:
    """The prompt file goes through ``track`` (video good, prompts bad)."""

    def build(scratch: Path, work: Path) -> TrackCall:
        return TrackCall(work / "video.npy", make(scratch), scratch / "out.zarr")

    return build


def _json_file(payload: Any) -> Callable[[Path], Path]:
    def make(scratch: Path) -> Path:
        path = scratch / "prompts.json"
        path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
        return path

    return make


def _text_file(name: str, text: str | bytes) -> Callable[[Path], Path]:
    def make(scratch: Path) -> Path:
        path = scratch / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return path

    return make


def _prompt(**entry: Any) -> dict[str, Any]:
    return {"version": 1, "prompts": [{"frame": 0, "object": 1, **entry}]}


# -- video builders ------------------------------------------------------------------
def _mp4(scratch: Path) -> Path:
    path = scratch / "good.mp4"
    write_noise_mp4(path)
    return path


def _truncated_mp4(scratch: Path) -> Path:
    data = _mp4(scratch).read_bytes()
    path = scratch / "truncated.mp4"
    path.write_bytes(data[: len(data) // 2])
    return path


def _corrupt_mp4(scratch: Path) -> Path:
    path = scratch / "corrupt.mp4"
    corrupt_packet(_mp4(scratch), path, 15)
    return path


def _one_frame_mp4(scratch: Path) -> Path:
    path = scratch / "one.mp4"
    write_noise_mp4(path, n_frames=1)
    return path


def _zero_frame_mp4(scratch: Path) -> Path:
    path = scratch / "zero.mp4"
    write_empty_stream_mp4(path)
    return path


def _tiff(data: np.ndarray, name: str = "stack.tif", **kwargs: Any) -> Callable[[Path], Path]:
    def make(scratch: Path) -> Path:
        import tifffile

        path = scratch / name
        tifffile.imwrite(path, data, **kwargs)
        return path

    return make


def _truncated_tiff(scratch: Path) -> Path:
    frames, _ = make_disk_video(12)
    good = _tiff(frames, "good.tif")(scratch)
    data = good.read_bytes()
    path = scratch / "truncated.tif"
    path.write_bytes(data[: len(data) // 2])
    return path


def _cut_pages_tiff(scratch: Path) -> Path:
    """A plain multi-page TIFF (no ImageJ or tifffile header) cut inside its 9th page."""
    from PIL import Image

    frames, _ = make_disk_video(12)
    pages = [Image.fromarray((frame >> 4).astype(np.uint8)) for frame in frames]
    good = scratch / "pages_good.tif"
    pages[0].save(good, save_all=True, append_images=pages[1:])
    data = good.read_bytes()
    path = scratch / "pages.tif"
    path.write_bytes(data[: len(data) * 17 // 24])
    return path


def _folder(sizes: list[tuple[int, int]], corrupt: int | None = None) -> Callable[[Path], Path]:
    def make(scratch: Path) -> Path:
        from PIL import Image

        folder = scratch / "frames"
        folder.mkdir()
        for i, (h, w) in enumerate(sizes):
            path = folder / f"frame{i}.png"
            if i == corrupt:
                path.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing an image needs")
            else:
                Image.fromarray(np.full((h, w), 40 * i, np.uint8)).save(path)
        return folder

    return make


def _float_video(bad: float, frame: int | None) -> Callable[[Path], np.ndarray]:
    """Float frames with ``bad`` values in one frame (``None``: everywhere)."""

    def make(scratch: Path) -> np.ndarray:
        video = make_disk_video(12)[0].astype(np.float32)
        if frame is None:
            video[:] = bad
        else:
            video[frame, 40:44, 60:64] = bad
        return video

    return make


def _tiny_frames(scratch: Path, work: Path) -> TrackCall:
    path = scratch / "tiny.json"
    path.write_text(json.dumps(_prompt(points=[[2, 2]])))
    return TrackCall(np.zeros((4, 6, 6), np.uint8), path, scratch / "out.zarr")


def _zarr_group(scratch: Path) -> Path:
    import zarr

    path = scratch / "plain.zarr"
    zarr.open_group(str(path), mode="w")
    return path


def _bad_npy(scratch: Path) -> Path:
    path = scratch / "broken.npy"
    path.write_bytes(b"\x93NUMPY\x09\x00 this header is not numpy's")
    return path


def _deep_json() -> str:
    return '{"version": 1, "prompts": ' + "[" * 100_000 + "]" * 100_000 + "}"


CASES: list[Case] = [
    # -- videos and image stacks -------------------------------------------------------
    Case(
        "missing-file",
        _video_case(lambda s: s / "nowhere.mp4"),
        InputFileNotFoundError,
        r"nowhere\.mp4: no such file or folder",
    ),
    Case(
        "empty-file",
        _video_case(_text_file("empty.mp4", b"")),
        VideoReadError,
        r"empty\.mp4: the file is empty",
    ),
    Case(
        "truncated-mp4",
        _video_case(_truncated_mp4),
        VideoReadError,
        r"truncated\.mp4: cannot open the video, the file is truncated, corrupt",
    ),
    Case(
        "text-named-mp4",
        _video_case(_text_file("notes.mp4", "not a video\n" * 40)),
        VideoReadError,
        # FFmpeg's reason, without its errno or the path a second time
        r"notes\.mp4: cannot open the video, the file is truncated, corrupt or not a video "
        r"\(Invalid data found when processing input\)$",
    ),
    Case(
        "zero-frame-mp4",
        _video_case(_zero_frame_mp4),
        VideoReadError,
        r"zero\.mp4: the file has no video stream \(no frames\)",
    ),
    Case(
        "one-frame-mp4",
        _video_case(_one_frame_mp4),
        VideoReadError,
        r"one\.mp4: the video has only 1 frame; tracking needs at least 2",
    ),
    Case(
        "corrupt-middle-mp4",
        _video_case(_corrupt_mp4),
        VideoReadError,
        r"corrupt\.mp4: frame 15 cannot be decoded \(corrupt segment",
        False,
    ),
    Case(
        "unsupported-suffix",
        _video_case(_text_file("clip.xyz", "x")),
        VideoReadError,
        r"clip\.xyz: unsupported file type '\.xyz'",
    ),
    Case(
        "tiff-5d-no-axes",
        _video_case(_tiff(np.zeros((2, 3, 4, 16, 16), np.uint8))),
        VideoReadError,
        r"stack\.tif: 5-D TIFF without axes metadata",
    ),
    Case(
        "tiff-garbage",
        _video_case(_text_file("junk.tif", b"II*\x00" + bytes(60))),
        VideoReadError,
        r"junk\.tif: not a readable TIFF file",
    ),
    Case(
        "tiff-truncated",
        _video_case(_truncated_tiff),
        VideoReadError,
        r"truncated\.tif is truncated: its header promises 12 images",
    ),
    Case(
        "tiff-pages-truncated",
        _video_case(_cut_pages_tiff),
        VideoReadError,
        r"pages\.tif is truncated: the file ends inside its page 9, after only 8 complete",
    ),
    Case(
        "folder-mismatched-sizes",
        _video_case(_folder([(96, 128)] * 3 + [(96, 120)])),
        VideoReadError,
        r"frame3\.png is 120x96 pixels but frame0\.png is 128x96",
    ),
    Case(
        "folder-corrupt-frame",
        _video_case(_folder([(96, 128)] * 4, corrupt=2)),
        VideoReadError,
        r"frame2\.png: unreadable image",
    ),
    Case(
        "folder-without-images",
        _video_case(lambda s: (s / "none").mkdir() or s / "none"),
        VideoReadError,
        r"none: the folder holds no image frames",
    ),
    Case(
        "float-nan-frame",
        _video_case(_float_video(np.nan, 5)),
        InputError,
        r"frame 5 contains NaN or infinite values",
        False,
    ),
    Case(
        "float-inf-frame",
        _video_case(_float_video(np.inf, 8)),
        InputError,
        r"frame 8 contains NaN or infinite values",
        False,
    ),
    Case(
        "float-all-nan",
        _video_case(_float_video(np.nan, None)),
        InputError,
        r"no finite pixel values \(all NaN/inf\)",
    ),
    Case(
        "array-2d",
        _video_case(lambda s: np.zeros((96, 128), np.uint8)),
        InputError,
        r"needs axes \(t, y, x\) or \(t, y, x, c\); got shape \(96, 128\)",
    ),
    Case(
        "complex-dtype",
        _video_case(lambda s: np.zeros((4, 96, 128), np.complex64)),
        InputError,
        r"unsupported pixel dtype complex64",
    ),
    Case(
        "one-frame-array",
        _video_case(lambda s: np.zeros((1, 96, 128), np.uint8)),
        VideoReadError,
        r"only 1 frame; tracking needs at least 2 frames",
    ),
    Case(
        "tiny-frames",
        _tiny_frames,
        InputError,
        r"frames of 6x6 pixels are too small \(min 8x8\)",
    ),
    Case(
        "zarr-without-ngff",
        _video_case(_zarr_group),
        VideoReadError,
        r"plain\.zarr: zarr group without OME-Zarr 'multiscales'",
    ),
    Case(
        "broken-npy",
        _video_case(_bad_npy),
        VideoReadError,
        r"broken\.npy: not a readable \.npy array",
    ),
    # -- prompt files ------------------------------------------------------------------
    Case(
        "prompts-missing",
        _prompt_case(lambda s: s / "absent.json"),
        InputFileNotFoundError,
        r"absent\.json: prompt file not found",
    ),
    Case(
        "prompts-malformed-json",
        _prompt_case(_json_file('{"version": 1, "prompts": [')),
        PromptError,
        r"prompts\.json: malformed JSON",
    ),
    Case(
        "prompts-too-deep",
        _prompt_case(_json_file(_deep_json())),
        PromptError,
        r"prompts\.json: malformed JSON",
    ),
    Case(
        "prompts-not-utf8",
        _prompt_case(_text_file("latin.json", '{"n": "caf\xe9"}'.encode("latin-1"))),
        PromptError,
        r"latin\.json: not a UTF-8 text file",
    ),
    Case(
        "prompts-top-level-list",
        _prompt_case(_json_file([1, 2])),
        PromptError,
        r"the top level must be a JSON object",
    ),
    Case(
        "prompts-unknown-version",
        _prompt_case(_json_file({**_prompt(points=[[3, 3]]), "version": 7})),
        PromptError,
        r"prompt file version 7 is not supported",
    ),
    Case(
        "prompts-missing-version",
        _prompt_case(_json_file({"prompts": []})),
        PromptError,
        r"missing or invalid 'version' \(expected 1\)",
    ),
    Case(
        "prompts-negative-coordinates",
        _prompt_case(_json_file(_prompt(points=[[-4, 10]]))),
        PromptError,
        r"prompts\[0\]: points must not have negative coordinates",
    ),
    Case(
        "prompts-out-of-range",
        _prompt_case(_json_file(_prompt(points=[[500, 10]]))),
        PromptError,
        r"point \(500, 10\) is outside the 128x96 frame",
    ),
    Case(
        "prompts-nan-coordinate",
        _prompt_case(
            _json_file(
                '{"version": 1, "prompts": [{"frame": 0, "object": 1, "points": [[NaN, 3]]}]}'
            )
        ),
        PromptError,
        r"points must hold finite numbers, got nan",
    ),
    Case(
        "prompts-frame-beyond-end",
        _prompt_case(
            _json_file(
                {"version": 1, "prompts": [{"frame": 12, "object": 1, "points": [[30, 30]]}]}
            )
        ),
        PromptError,
        r"frame 12 is beyond the end of the video \(12 frames, last index 11\)",
    ),
    Case(
        "prompts-duplicate-object-ids",
        _prompt_case(
            _json_file(
                {**_prompt(points=[[3, 3]]), "objects": [{"id": 1}, {"id": 1, "name": "twin"}]}
            )
        ),
        PromptError,
        r"objects\[1\]: duplicate object id 1 \(also objects\[0\]\)",
    ),
    Case(
        "prompts-labels-not-binary",
        _prompt_case(_json_file(_prompt(points=[[3, 3]], labels=[2]))),
        PromptError,
        r"prompts\[0\]: labels must be 0 or 1",
    ),
    Case(
        "prompts-empty-list",
        _prompt_case(_json_file({"version": 1, "prompts": []})),
        PromptError,
        r"prompts\.json: the prompt list is empty",
    ),
    Case(
        "prompts-inverted-box",
        _prompt_case(_json_file(_prompt(box=[50, 50, 10, 80]))),
        PromptError,
        r"box needs x0 < x1 and y0 < y1",
    ),
    Case(
        "prompts-bad-mask-rle",
        _prompt_case(_json_file(_prompt(mask={"size": [96, 128], "counts": [5, 7]}))),
        PromptError,
        r"prompts\[0\]: mask: ",
    ),
    Case(
        "prompts-huge-mask",
        _prompt_case(_json_file(_prompt(mask={"size": [100000, 100000], "counts": [10**10]}))),
        PromptError,
        r"mask: RLE size 100000 x 100000 is larger than any supported frame",
    ),
    Case(
        "prompts-infinite-mask-size",
        _prompt_case(
            _json_file(
                '{"version": 1, "prompts": [{"frame": 0, "object": 1, '
                '"mask": {"size": [Infinity, 2], "counts": [1]}}]}'
            )
        ),
        PromptError,
        r"mask: RLE needs 'size' \[h, w\] and integer 'counts'",
    ),
    Case(
        "prompts-unknown-key",
        _prompt_case(_json_file(_prompt(points=[[3, 3]], clicks=1))),
        PromptError,
        r"prompts\[0\]: unknown keys \['clicks'\]",
    ),
    Case(
        "csv-missing-columns",
        _prompt_case(_text_file("clicks.csv", "frame,object,x\n0,1,3\n")),
        PromptError,
        r"clicks\.csv: the CSV header must contain .* missing \['y'\]",
    ),
    Case(
        "csv-not-a-number",
        _prompt_case(_text_file("clicks.csv", "frame,object,x,y\n0,1,a,3\n")),
        PromptError,
        r"clicks\.csv: line 2: frame/object/label must be integers",
    ),
    Case(
        "csv-no-rows",
        _prompt_case(_text_file("clicks.csv", "frame,object,x,y,label\n")),
        PromptError,
        r"clicks\.csv: the CSV has no clicks \(the prompt list is empty\)",
    ),
]
