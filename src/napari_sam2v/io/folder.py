"""Folders of image frames (PNG, JPEG, TIFF, BMP) read lazily in natural sort order.

A PNG or JPEG frame with an EXIF orientation (a phone or camera held sideways) is
turned upright, as image viewers show it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from napari_sam2v.errors import InputError, VideoReadError
from napari_sam2v.io._tiff import tiff_metadata
from napari_sam2v.io.source import VideoMetadata, VideoSource

__all__ = ["IMAGE_SUFFIXES", "FolderSource", "natural_key", "open_folder"]

# The EXIF orientation tag, and its values that turn the image by 90 degrees.
_EXIF_ORIENTATION = 0x0112
_TURNED = frozenset({5, 6, 7, 8})

#: File suffixes read from image folders.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_TIFF_SUFFIXES = (".tif", ".tiff")
# What a frame's header tells: (height, width) and (dtype name, channels), if known.
_Header = tuple[tuple[int, int], tuple[str, int] | None]


def natural_key(name: str) -> list[Any]:
    """Sort key that orders ``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


class FolderSource(VideoSource):
    """A folder of PNG/JPEG/TIFF/BMP frames in natural sort order.

    Every frame must have the size, pixel type (dtype) and number of channels of the
    first; this is checked from the file headers when the folder is opened, and again
    when a frame is read. Hidden files (names starting with ``.``, such as the macOS
    ``._frame.png`` AppleDouble files) are skipped. When the first frame is a
    calibrated ImageJ or OME-TIFF, its pixel size (and ImageJ ``finterval``, if any)
    become the calibration. The first frame is opened once, for its pixels, its
    header and its calibration together.

    Parameters
    ----------
    path : Path
        The folder.
    channel : int, optional
        Channel to keep from multi-channel frames.
    """

    def __init__(self, path: Path, *, channel: int | None = None) -> None:
        files = sorted(
            (
                p
                for p in path.iterdir()
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
            ),
            key=lambda p: natural_key(p.name),
        )
        if not files:
            raise VideoReadError(
                f"{path}: the folder holds no image frames ({', '.join(IMAGE_SUFFIXES)})"
            )
        self.files = files
        first, (size0, kind0), fields, extra = self._open_first(files[0])
        for file in files[1:]:
            size, kind = self._header(file)
            if size != size0:
                raise VideoReadError(
                    f"{path}: frame {file.name} is {size[1]}x{size[0]} pixels but "
                    f"{files[0].name} is {size0[1]}x{size0[0]}: all frames "
                    "in a folder must have the same size"
                )
            if None not in (kind, kind0) and kind != kind0:
                raise VideoReadError(
                    f"{path}: frame {file.name} is {_describe(kind)} but {files[0].name} is "
                    f"{_describe(kind0)}: all frames in a folder must have the same bit depth "
                    "and number of channels; save every frame with the same type (e.g. "
                    "Fiji: Image > Type) or move the odd frames out"
                )
        self._frame_shape = tuple(first.shape)
        shape: tuple[int, ...] = (len(files), *first.shape)
        self._channel = None
        if first.ndim == 3 and channel is not None:
            if not 0 <= channel < first.shape[2]:
                raise InputError(f"{path}: channel {channel} does not exist")
            self._channel = int(channel)
            shape = shape[:3]
        meta = VideoMetadata(
            source=str(path),
            kind="folder",
            axes="tyxc" if len(shape) == 4 else "tyx",
            extra={"files": [f.name for f in files], **extra},
            **fields,
        )
        super().__init__(shape, first.dtype, meta)

    @property
    def stored_axes(self) -> str:
        """``"TYXC"`` for frames with channels (even when one is kept), else ``"TYX"``."""
        return "TYXC" if len(self._frame_shape) == 3 else "TYX"

    @classmethod
    def _open_first(cls, file: Path) -> tuple[np.ndarray, _Header, dict[str, Any], dict[str, Any]]:
        """The first frame's pixels, header, calibration fields and extras, in one open.

        Only a TIFF frame has a calibration (ImageJ or OME-TIFF metadata).
        """
        try:
            if file.suffix.lower() in _TIFF_SUFFIXES:
                import tifffile

                with tifffile.TiffFile(file) as tif:
                    series = tif.series[0]
                    header = cls._tiff_header(series)
                    meta = tiff_metadata(tif, series, file)
                    data = np.asarray(tif.asarray())  # as tifffile.imread reads it
                names = ("fps", "frame_interval", "time_unit", "pixel_size", "unit")
                return data, header, {n: getattr(meta, n) for n in names}, dict(meta.extra)
            from PIL import Image

            with Image.open(file) as img:
                return cls._pil_pixels(img), cls._pil_header(img), {}, {}
        except VideoReadError:
            raise
        except Exception as exc:
            raise VideoReadError(f"{file}: unreadable image ({exc})") from exc

    @classmethod
    def _header(cls, file: Path) -> _Header:
        """``(height, width)`` and ``(dtype name, channels)`` read from the file's header."""
        try:
            if file.suffix.lower() in _TIFF_SUFFIXES:
                import tifffile

                with tifffile.TiffFile(file) as tif:
                    return cls._tiff_header(tif.series[0])
            from PIL import Image

            with Image.open(file) as img:
                return cls._pil_header(img)
        except Exception as exc:
            raise VideoReadError(f"{file}: unreadable image ({exc})") from exc

    @staticmethod
    def _tiff_header(series: Any) -> _Header:
        shape, axes = series.shape, series.axes
        size = int(shape[axes.index("Y")]), int(shape[axes.index("X")])
        channels = int(np.prod(shape)) // max(size[0] * size[1], 1)
        return size, (np.dtype(series.dtype).name, channels)

    @staticmethod
    def _pil_header(img: Any) -> _Header:
        from PIL import ImageMode

        mode = img.mode
        if mode == "P":  # _pil_pixels converts palette images
            mode = "RGBA" if "transparency" in img.info else "RGB"
        size = int(img.size[1]), int(img.size[0])
        if _orientation(img) in _TURNED:  # _pil_pixels turns it upright
            size = size[::-1]
        try:
            desc = ImageMode.getmode(mode)
        except KeyError:  # a mode Pillow reads but does not describe: checked on reading
            return size, None
        return size, (np.dtype(desc.typestr).name, len(desc.bands))

    @staticmethod
    def _pil_pixels(img: Any) -> np.ndarray:
        if _orientation(img) > 1:  # upright, as image viewers show it
            from PIL import ImageOps

            img = ImageOps.exif_transpose(img)
        if img.mode == "P":
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        return np.asarray(img)

    @classmethod
    def _read_file(cls, file: Path) -> np.ndarray:
        try:
            if file.suffix.lower() in _TIFF_SUFFIXES:
                import tifffile

                return np.asarray(tifffile.imread(file))
            from PIL import Image

            with Image.open(file) as img:
                return cls._pil_pixels(img)
        except Exception as exc:
            raise VideoReadError(f"{file}: unreadable image ({exc})") from exc

    def _read(self, index: int) -> np.ndarray:
        file = self.files[index]
        data = self._read_file(file)
        if data.dtype.name != self.dtype.name or data.shape != self._frame_shape:
            raise VideoReadError(
                f"{file}: the frame is {data.dtype.name} with shape {data.shape} but the first "
                f"frame {self.files[0].name} is {self.dtype.name} with shape "
                f"{self._frame_shape}: all frames in a folder must have the same size, bit "
                "depth and number of channels"
            )
        if self._channel is not None and data.ndim == 3:
            data = data[..., self._channel]
        return data


def _orientation(img: Any) -> int:
    """The image's EXIF orientation (1: upright; 2-8: mirrored and/or turned)."""
    try:
        value = int(img.getexif().get(_EXIF_ORIENTATION, 1) or 1)
    except Exception:  # unreadable EXIF: taken as stored, as viewers do
        return 1
    return value if 1 <= value <= 8 else 1


def _describe(kind: tuple[str, int] | None) -> str:
    dtype, channels = kind or ("unknown", 1)
    return dtype if channels == 1 else f"{dtype} with {channels} channels"


def open_folder(path: Path, *, channel: int | None = None) -> VideoSource:
    """Open a folder of image frames (see :class:`FolderSource`)."""
    return FolderSource(path, channel=channel)
