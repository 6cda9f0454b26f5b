"""Windows and cropped masks: the classic engine never works on whole frames.

A :class:`Window` is a half-open rectangle of a frame; a :class:`CropMask` is a
boolean mask stored only over its bounding box, so that tracking many small
objects through long, large videos costs memory proportional to the objects,
not to the frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = ["CropMask", "Window"]


@dataclass(frozen=True)
class Window:
    """Half-open rectangle ``[y0, y1) x [x0, x1)`` inside a frame."""

    y0: int
    x0: int
    y1: int
    x1: int

    @classmethod
    def around(
        cls,
        y0: float,
        x0: float,
        y1: float,
        x1: float,
        *,
        margin: float,
        shape: tuple[int, int],
    ) -> Window:
        """Window over ``[y0, y1] x [x0, x1]`` grown by ``margin``, clipped to ``shape``."""
        height, width = shape
        return cls(
            max(0, int(np.floor(y0 - margin))),
            max(0, int(np.floor(x0 - margin))),
            min(height, int(np.ceil(y1 + margin)) + 1),
            min(width, int(np.ceil(x1 + margin)) + 1),
        )

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices selecting the window from a frame."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the window."""
        return self.y1 - self.y0, self.x1 - self.x0

    def points_inside(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, cols)`` in window coordinates of the ``[x, y]`` points inside it."""
        rows = np.round(points[:, 1]).astype(int) - self.y0
        cols = np.round(points[:, 0]).astype(int) - self.x0
        height, width = self.shape
        ok = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        return rows[ok], cols[ok]

    @staticmethod
    def surrounds(mask: np.ndarray) -> bool:
        """Whether ``mask`` (window-sized) reaches all four sides of the window."""
        return bool(mask[0].any() and mask[-1].any() and mask[:, 0].any() and mask[:, -1].any())

    def touches_inner_edge(self, mask: np.ndarray, frame_shape: tuple[int, int]) -> bool:
        """Whether ``mask`` (window-sized) reaches an edge that is not the frame's edge."""
        height, width = frame_shape
        return bool(
            (self.y0 > 0 and mask[0].any())
            or (self.y1 < height and mask[-1].any())
            or (self.x0 > 0 and mask[:, 0].any())
            or (self.x1 < width and mask[:, -1].any())
        )


@dataclass(frozen=True)
class CropMask:
    """A boolean object mask stored over its bounding box.

    Parameters
    ----------
    y0, x0 : int
        Frame coordinates of the top-left corner of ``mask``.
    mask : ndarray of bool
        The mask inside the bounding box (never empty).
    """

    y0: int
    x0: int
    mask: np.ndarray

    @classmethod
    def from_window(cls, window: Window, mask: np.ndarray) -> CropMask | None:
        """Crop a window-sized mask to its bounding box (``None`` when empty)."""
        return cls.from_array(mask, offset=(window.y0, window.x0))

    @classmethod
    def from_array(cls, mask: np.ndarray, *, offset: tuple[int, int] = (0, 0)) -> CropMask | None:
        """Crop any boolean array to its bounding box (``None`` when empty)."""
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            return None
        cols = np.flatnonzero(mask.any(axis=0))
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        crop = np.ascontiguousarray(mask[r0:r1, c0:c1], dtype=bool)
        return cls(int(offset[0] + r0), int(offset[1] + c0), crop)

    @property
    def y1(self) -> int:
        """Exclusive bottom row."""
        return self.y0 + self.mask.shape[0]

    @property
    def x1(self) -> int:
        """Exclusive right column."""
        return self.x0 + self.mask.shape[1]

    @property
    def area(self) -> int:
        """Number of pixels in the mask."""
        return int(np.count_nonzero(self.mask))

    def near_frame_edge(self, frame_shape: tuple[int, int], margin: int = 0) -> bool:
        """Whether the mask's bounding box comes within ``margin`` px of a frame edge."""
        height, width = frame_shape
        return (
            self.y0 <= margin
            or self.x0 <= margin
            or self.y1 >= height - margin
            or self.x1 >= width - margin
        )

    @property
    def centroid(self) -> np.ndarray:
        """``(y, x)`` centroid in frame coordinates."""
        ys, xs = np.nonzero(self.mask)
        return np.array([ys.mean() + self.y0, xs.mean() + self.x0])

    @property
    def size(self) -> float:
        """Characteristic length: the larger side of the bounding box."""
        return float(max(self.mask.shape))

    def deepest_point(self) -> np.ndarray:
        """``[x, y]`` frame coordinates of the pixel farthest inside the mask."""
        depth = ndi.distance_transform_edt(np.pad(self.mask, 1))[1:-1, 1:-1]
        row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
        return np.array([col + self.x0, row + self.y0], float)

    def contains(self, points: np.ndarray) -> bool:
        """Whether any ``[x, y]`` point lies on the mask."""
        rows, cols = Window(self.y0, self.x0, self.y1, self.x1).points_inside(points)
        return bool(self.mask[rows, cols].any())

    def full(self, shape: tuple[int, int]) -> np.ndarray:
        """The mask painted into a frame of ``shape``."""
        out = np.zeros(shape, dtype=bool)
        self.paste(out)
        return out

    def paste(self, out: np.ndarray, value: bool = True) -> None:
        """Write the mask into ``out`` (clipped to its bounds)."""
        height, width = out.shape
        y0, x0 = max(self.y0, 0), max(self.x0, 0)
        y1, x1 = min(self.y1, height), min(self.x1, width)
        if y0 >= y1 or x0 >= x1:
            return
        sub = self.mask[y0 - self.y0 : y1 - self.y0, x0 - self.x0 : x1 - self.x0]
        out[y0:y1, x0:x1][sub] = value

    def shifted(self, dy: float, dx: float) -> CropMask:
        """The same mask translated by a rounded ``(dy, dx)``."""
        return CropMask(self.y0 + round(dy), self.x0 + round(dx), self.mask)

    def in_window(self, window: Window) -> np.ndarray:
        """The mask as a window-sized array (parts outside the window are dropped)."""
        out = np.zeros(window.shape, dtype=bool)
        CropMask(self.y0 - window.y0, self.x0 - window.x0, self.mask).paste(out)
        return out
