"""Rendering primitives of the synthetic reef clip: water, caustics, coral and fish.

Geometry convention (it defines the ground truth exactly): ``x`` is the column and
``y`` the row, pixel centres lie on integer coordinates, and a pixel belongs to a
shape when its centre lies inside the shape or on its boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = [
    "FishLook",
    "FishPose",
    "caustics",
    "coral_layer",
    "fish_body_mask",
    "fish_mask",
    "fish_tail_mask",
    "paint_fish",
    "tail_triangle",
    "water_background",
]

_WATER_TOP = np.array([0.36, 0.74, 0.78])
_WATER_BOTTOM = np.array([0.04, 0.22, 0.42])


@dataclass(frozen=True)
class FishPose:
    """Shape and placement of one fish on one frame (pixels, radians).

    Parameters
    ----------
    cx, cy : float
        Body centre (column, row).
    heading : float
        Swimming direction, radians, measured from the +x axis towards +y (down).
    half_length, half_height : float
        Semi-axes of the elliptical body along and across ``heading``.
    tail_length : float
        Distance from the tail root to the tail fin's rear edge.
    tail_half_width : float
        Half the width of the tail fin's rear edge.
    tail_angle : float
        Tail beat: rotation of the tail relative to the body axis, radians.
    """

    cx: float
    cy: float
    heading: float
    half_length: float
    half_height: float
    tail_length: float
    tail_half_width: float
    tail_angle: float = 0.0

    def body_area(self) -> float:
        """Analytic area of the elliptical body, in pixels."""
        return math.pi * self.half_length * self.half_height

    def tail_area(self) -> float:
        """Analytic area of the tail triangle, in pixels."""
        return self.tail_length * self.tail_half_width


@dataclass(frozen=True)
class FishLook:
    """Colours and markings of one fish species (RGB in 0..1)."""

    body: tuple[float, float, float]
    belly: tuple[float, float, float]
    fin: tuple[float, float, float]
    stripes: tuple[float, ...] = ()
    stripe_color: tuple[float, float, float] = (0.95, 0.95, 0.92)
    stripe_half_width: float = 0.09
    spots: float = 0.0


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.indices(shape, dtype=np.float64)
    return cols, rows


def _body_coords(pose: FishPose, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates along (``u``) and across (``v``) the fish's body axis."""
    c, s = math.cos(pose.heading), math.sin(pose.heading)
    dx, dy = xs - pose.cx, ys - pose.cy
    return dx * c + dy * s, -dx * s + dy * c


def fish_body_mask(pose: FishPose, shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centres lie inside the fish's elliptical body.

    Parameters
    ----------
    pose : FishPose
        The fish.
    shape : tuple of int
        ``(rows, columns)`` of the frame.

    Returns
    -------
    ndarray of bool
    """
    xs, ys = _grid(shape)
    u, v = _body_coords(pose, xs, ys)
    return (u / pose.half_length) ** 2 + (v / pose.half_height) ** 2 <= 1.0


def tail_triangle(pose: FishPose) -> np.ndarray:
    """The tail fin's three vertices ``[[x, y], ...]``: root, then the two rear corners."""
    c, s = math.cos(pose.heading), math.sin(pose.heading)
    root = np.array([pose.cx - 0.8 * pose.half_length * c, pose.cy - 0.8 * pose.half_length * s])
    back = pose.heading + math.pi + pose.tail_angle
    bc, bs = math.cos(back), math.sin(back)
    rear = root + pose.tail_length * np.array([bc, bs])
    across = pose.tail_half_width * np.array([-bs, bc])
    return np.stack([root, rear + across, rear - across])


def fish_tail_mask(pose: FishPose, shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centres lie inside the tail triangle (edges included)."""
    xs, ys = _grid(shape)
    tri = tail_triangle(pose)
    signs = []
    for i in range(3):
        (x0, y0), (x1, y1) = tri[i], tri[(i + 1) % 3]
        signs.append((x1 - x0) * (ys - y0) - (y1 - y0) * (xs - x0))
    a, b, c = signs
    return ((a >= 0) & (b >= 0) & (c >= 0)) | ((a <= 0) & (b <= 0) & (c <= 0))


def fish_mask(pose: FishPose, shape: tuple[int, int]) -> np.ndarray:
    """The whole fish (body and tail), ignoring occlusion by other fish."""
    return fish_body_mask(pose, shape) | fish_tail_mask(pose, shape)


def water_background(shape: tuple[int, int]) -> np.ndarray:
    """Blue-green water: lighter near the surface, deep blue towards the bottom."""
    h, w = shape
    depth = np.linspace(0.0, 1.0, h)[:, None, None] ** 0.8
    sideways = 0.04 * np.linspace(-1.0, 1.0, w)[None, :, None]
    img = _WATER_TOP * (1.0 - depth) + _WATER_BOTTOM * depth
    return np.broadcast_to(img + sideways * np.array([0.0, 0.5, 1.0]), (h, w, 3)).copy()


def caustics(shape: tuple[int, int], t: float) -> np.ndarray:
    """Moving caustic light network in 0..1, strongest near the surface.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, columns)``.
    t : float
        Time in frames; the pattern drifts and ripples smoothly with it.
    """
    xs, ys = _grid(shape)
    warp_x = xs + 6.0 * np.sin(ys / 23.0 + 0.21 * t)
    warp_y = ys + 6.0 * np.sin(xs / 29.0 - 0.17 * t)
    waves = (
        np.sin(warp_x / 11.0 + warp_y / 17.0 + 0.31 * t)
        + np.sin(-warp_x / 13.0 + warp_y / 9.5 - 0.23 * t + 1.3)
        + np.sin(warp_x / 7.9 - warp_y / 21.0 + 0.19 * t + 2.1)
    )
    ridges = np.clip(1.0 - np.abs(waves) / 1.2, 0.0, 1.0) ** 4
    falloff = np.exp(-ys / (0.55 * shape[0]))
    return ridges * falloff


def coral_layer(shape: tuple[int, int], seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """A static reef: a rocky bottom and branching coral with polyp texture.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, columns)``.
    seed : int, optional
        Seed of the (deterministic) random branching and texture.

    Returns
    -------
    colour : ndarray (H, W, 3) float in 0..1
    alpha : ndarray (H, W) float in 0..1, 1 where the reef is opaque
    """
    h, w = shape
    rng = np.random.default_rng(seed)
    xs, ys = _grid(shape)
    ground = h - 30 - 10 * np.sin(xs[0] / 37.0) - 6 * np.sin(xs[0] / 13.0 + 1.0)
    rock = ys >= ground[None, :]
    branch = np.zeros(shape, dtype=bool)
    segments: list[tuple[float, float, float, float, float]] = []
    stack = [
        (float(x0), float(ground[int(x0)]) + 4, -math.pi / 2, 7.0, 0) for x0 in (60, 150, 250, 330)
    ]
    while stack:
        x0, y0, angle, radius, level = stack.pop()
        length = rng.uniform(18, 30) * (0.85**level)
        x1, y1 = x0 + length * math.cos(angle), y0 + length * math.sin(angle)
        segments.append((x0, y0, x1, y1, radius))
        if level < 4:
            for turn in (-0.45, 0.4):
                stack.append(
                    (x1, y1, angle + turn + rng.uniform(-0.2, 0.2), radius * 0.78, level + 1)
                )
    for x0, y0, x1, y1, radius in segments:
        # Rasterise the capsule only inside its bounding box.
        r0 = max(int(math.floor(min(y0, y1) - radius)), 0)
        r1 = min(int(math.ceil(max(y0, y1) + radius)) + 1, h)
        c0 = max(int(math.floor(min(x0, x1) - radius)), 0)
        c1 = min(int(math.ceil(max(x0, x1) + radius)) + 1, w)
        if r0 >= r1 or c0 >= c1:
            continue
        bx, by = xs[r0:r1, c0:c1], ys[r0:r1, c0:c1]
        dx, dy = x1 - x0, y1 - y0
        frac = np.clip(((bx - x0) * dx + (by - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
        dist2 = (bx - x0 - frac * dx) ** 2 + (by - y0 - frac * dy) ** 2
        branch[r0:r1, c0:c1] |= dist2 <= radius * radius
    grain = ndimage.gaussian_filter(rng.normal(0.0, 1.0, shape), 1.2)
    grain /= np.abs(grain).max()
    polyps = (np.sin(xs * 1.3) * np.sin(ys * 1.3) > 0.6).astype(float)
    colour = np.empty((h, w, 3))
    rock_rgb = np.array([0.42, 0.38, 0.30]) + 0.10 * grain[..., None]
    coral_rgb = np.array([0.86, 0.42, 0.40]) + 0.12 * grain[..., None] - 0.12 * polyps[..., None]
    colour[:] = rock_rgb
    colour[branch] = coral_rgb[branch]
    alpha = (rock | branch).astype(float)
    return np.clip(colour, 0.0, 1.0), alpha


def paint_fish(
    image: np.ndarray,
    visible: np.ndarray,
    pose: FishPose,
    look: FishLook,
    *,
    haze: float,
    water: np.ndarray,
) -> None:
    """Paint one fish into ``image`` (in place) on the pixels in ``visible``.

    Parameters
    ----------
    image : ndarray (H, W, 3) float
        Frame being composed.
    visible : ndarray of bool (H, W)
        Pixels this fish covers (its mask minus nearer fish are painted later).
    pose : FishPose
        Where the fish is.
    look : FishLook
        Its colours and markings.
    haze : float
        0..1, how much the water colour veils the fish (distance cue).
    water : ndarray (H, W, 3) float
        The water colour the haze blends towards.
    """
    if not visible.any():
        return
    shape = visible.shape
    xs, ys = _grid(shape)
    u, v = _body_coords(pose, xs, ys)
    un, vn = u / pose.half_length, v / pose.half_height
    body = fish_body_mask(pose, shape)
    belly_mix = np.clip(vn * 0.5 + 0.5, 0.0, 1.0)[..., None]
    rgb = np.array(look.body) * (1 - belly_mix) + np.array(look.belly) * belly_mix
    rgb = np.where(body[..., None], rgb, np.array(look.fin))
    for centre in look.stripes:
        band = body & (np.abs(un - centre) <= look.stripe_half_width)
        rgb[band] = look.stripe_color
    if look.spots:
        speckle = (np.sin(u * 0.9) * np.sin(v * 1.1 + 0.5) > 0.7) & body
        rgb[speckle] = rgb[speckle] * (1.0 - look.spots)
    shading = 1.0 - 0.25 * np.clip(np.abs(vn), 0, 1) ** 2
    rgb = rgb * shading[..., None]
    eye = (u - 0.62 * pose.half_length) ** 2 + (v + 0.2 * pose.half_height) ** 2 <= (
        0.16 * pose.half_height + 1.2
    ) ** 2
    rgb[eye & body] = (0.05, 0.05, 0.07)
    image[visible] = (1.0 - haze) * rgb[visible] + haze * water[visible]
