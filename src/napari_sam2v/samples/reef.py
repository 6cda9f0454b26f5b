"""The synthetic ``reef`` clip: a deterministic underwater scene with exact ground truth.

Three fish swim over a static coral reef under moving caustic light. Fish 1 (nearest)
crosses in front of fish 2 and hides part of it; fish 2 makes a U-turn; fish 3 swims
out of the right edge, turns around out of view and comes back. Every frame's ground
truth is an instance label image (value = fish id, 0 = background) in which the nearer
fish wins where fish overlap.

Regenerate the shipped files with::

    python -m napari_sam2v.samples.reef --out sample_data/reef
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.interpolate import CubicSpline

from napari_sam2v.errors import InputError
from napari_sam2v.samples._common import interior_points, write_prompts_json
from napari_sam2v.samples._reef_scene import (
    FishLook,
    FishPose,
    caustics,
    coral_layer,
    fish_mask,
    paint_fish,
    water_background,
)
from napari_sam2v.types import ObjectInfo

__all__ = [
    "REEF_FPS",
    "REEF_N_FRAMES",
    "REEF_SHAPE",
    "FishSpec",
    "ReefClip",
    "encode_mp4",
    "main",
    "reef_fish",
    "render_reef",
    "write_reef",
]

REEF_SHAPE: tuple[int, int] = (288, 384)
REEF_N_FRAMES = 48
REEF_FPS = 12
MP4_NAME = "reef.mp4"
LABELS_NAME = "reef_labels.npz"
PROMPTS_NAME = "reef_prompts.json"


@dataclass(frozen=True)
class FishSpec:
    """One fish: identity, body size, look, depth and path.

    Parameters
    ----------
    info : ObjectInfo
        Id (the label value), name and display colour.
    half_length, half_height, tail_length, tail_half_width : float
        Body and tail dimensions in pixels (see :class:`FishPose`).
    depth : int
        Distance rank from the camera: 0 is nearest and occludes the others.
    path : tuple of (frame, x, y)
        Control points of the body centre; a cubic spline runs through them.
    look : FishLook
        Colours and markings.
    beat_phase : float
        Phase of the tail beat, radians.
    """

    info: ObjectInfo
    half_length: float
    half_height: float
    tail_length: float
    tail_half_width: float
    depth: int
    path: tuple[tuple[float, float, float], ...]
    look: FishLook
    beat_phase: float = 0.0

    def poses(self, n_frames: int) -> list[FishPose]:
        """The fish's pose on frames ``0 .. n_frames - 1``; it faces where it swims."""
        knots = np.array(self.path, dtype=np.float64)
        spline = CubicSpline(knots[:, 0], knots[:, 1:], axis=0, bc_type="natural")
        t = np.arange(n_frames, dtype=np.float64)
        centre, velocity = spline(t), spline(t, 1)
        return [
            FishPose(
                cx=float(centre[i, 0]),
                cy=float(centre[i, 1]),
                heading=math.atan2(float(velocity[i, 1]), float(velocity[i, 0])),
                half_length=self.half_length,
                half_height=self.half_height,
                tail_length=self.tail_length,
                tail_half_width=self.tail_half_width,
                tail_angle=0.3 * math.sin(2.0 * math.pi * i / 6.0 + self.beat_phase),
            )
            for i in range(n_frames)
        ]


def reef_fish() -> tuple[FishSpec, ...]:
    """The three fish of the reef clip, nearest first."""
    return (
        FishSpec(
            info=ObjectInfo(1, "fish 1", "#ff8800"),
            half_length=26.0,
            half_height=11.5,
            tail_length=13.0,
            tail_half_width=9.0,
            depth=0,
            path=((0, 50, 152), (12, 118, 160), (24, 192, 150), (36, 262, 140), (47, 330, 128)),
            look=FishLook(
                body=(1.0, 0.45, 0.05),
                belly=(1.0, 0.62, 0.25),
                fin=(0.95, 0.35, 0.05),
                stripes=(-0.45, 0.3),
            ),
        ),
        FishSpec(
            info=ObjectInfo(2, "fish 2", "#ffd400"),
            half_length=22.0,
            half_height=10.0,
            tail_length=11.0,
            tail_half_width=8.0,
            depth=1,
            path=(
                (0, 332, 122),
                (10, 262, 132),
                (20, 188, 140),
                (28, 124, 128),
                (34, 98, 102),
                (40, 122, 78),
                (47, 176, 72),
            ),
            look=FishLook(
                body=(0.98, 0.86, 0.12),
                belly=(1.0, 0.95, 0.55),
                fin=(0.90, 0.75, 0.10),
                spots=0.25,
            ),
            beat_phase=1.7,
        ),
        FishSpec(
            info=ObjectInfo(3, "fish 3", "#3f7fff"),
            half_length=20.0,
            half_height=8.5,
            tail_length=11.0,
            tail_half_width=7.0,
            depth=2,
            path=(
                (0, 250, 62),
                (8, 345, 58),
                (14, 425, 56),
                (20, 475, 72),
                (26, 425, 92),
                (32, 340, 96),
                (40, 262, 88),
                (47, 204, 82),
            ),
            look=FishLook(
                body=(0.20, 0.35, 0.95),
                belly=(0.55, 0.75, 1.0),
                fin=(0.95, 0.85, 0.20),
                stripes=(0.05,),
                stripe_color=(0.05, 0.08, 0.25),
                stripe_half_width=0.15,
            ),
            beat_phase=3.1,
        ),
    )


@dataclass(frozen=True)
class ReefClip:
    """A rendered reef clip and its exact ground truth.

    Attributes
    ----------
    frames : ndarray (t, y, x, 3) uint8
        The RGB frames as rendered (before any video compression).
    labels : ndarray (t, y, x) uint8
        Ground-truth instance labels; value = fish id, nearer fish occlude farther ones.
    poses : tuple of tuple of FishPose
        ``poses[t][i]`` is fish ``fish[i]``'s pose on frame ``t`` (also out of view).
    fish : tuple of FishSpec
        The fish, nearest first.
    prompts : list of dict
        Prompt entries (JSON v1 layout): two clicks per fish on its first visible frame.
    fps : int
        Frame rate used for the mp4.
    """

    frames: np.ndarray
    labels: np.ndarray
    poses: tuple[tuple[FishPose, ...], ...]
    fish: tuple[FishSpec, ...]
    prompts: list[dict[str, object]]
    fps: int = REEF_FPS

    @property
    def objects(self) -> list[ObjectInfo]:
        """The fish as :class:`ObjectInfo`, in id order."""
        return sorted((f.info for f in self.fish), key=lambda o: o.id)


def _frame_prompts(labels: np.ndarray, fish: Sequence[FishSpec]) -> list[dict[str, object]]:
    prompts: list[dict[str, object]] = []
    for spec in sorted(fish, key=lambda f: f.info.id):
        present = np.flatnonzero((labels == spec.info.id).any(axis=(1, 2)))
        if present.size == 0:
            raise InputError(f"reef: {spec.info.name} is never visible, cannot place a prompt")
        first = int(present[0])
        points = interior_points(
            labels[first] == spec.info.id, 2, min_separation=0.6 * spec.half_length
        )
        prompts.append(
            {"frame": first, "object": spec.info.id, "points": points, "labels": [1] * len(points)}
        )
    return prompts


def render_reef(
    *, n_frames: int = REEF_N_FRAMES, shape: tuple[int, int] = REEF_SHAPE, noise_seed: int = 2024
) -> ReefClip:
    """Render the reef clip and its ground truth (deterministic).

    Parameters
    ----------
    n_frames : int, optional
        Number of frames; the fish paths are designed for the default 48.
    shape : tuple of int, optional
        ``(rows, columns)``; the paths are designed for the default ``(288, 384)``.
    noise_seed : int, optional
        Seed of the sensor noise.

    Returns
    -------
    ReefClip
    """
    if n_frames < 2:
        raise InputError(f"reef: n_frames must be at least 2, got {n_frames}")
    if len(shape) != 2 or min(shape) < 64:
        raise InputError(f"reef: shape must be (rows, columns) of at least 64, got {shape}")
    fish = reef_fish()
    per_fish = [spec.poses(n_frames) for spec in fish]
    poses = tuple(tuple(p[t] for p in per_fish) for t in range(n_frames))
    water = water_background(shape)
    coral, alpha = coral_layer(shape)
    scene = water * (1.0 - alpha[..., None]) + coral * alpha[..., None]
    far_to_near = sorted(range(len(fish)), key=lambda i: -fish[i].depth)
    rng = np.random.default_rng(noise_seed)
    frames = np.empty((n_frames, *shape, 3), dtype=np.uint8)
    labels = np.zeros((n_frames, *shape), dtype=np.uint8)
    for t in range(n_frames):
        image = scene.copy()
        for i in far_to_near:
            mask = fish_mask(poses[t][i], shape)
            labels[t][mask] = fish[i].info.id
            haze = 0.08 + 0.14 * fish[i].depth
            paint_fish(image, mask, poses[t][i], fish[i].look, haze=haze, water=water)
        light = caustics(shape, float(t))[..., None]
        image = image * (0.9 + 0.45 * light) + 0.06 * light
        image = ndimage.gaussian_filter(image, sigma=(0.6, 0.6, 0.0))
        image += rng.normal(0.0, 0.008, image.shape)
        frames[t] = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    return ReefClip(
        frames=frames,
        labels=labels,
        poses=poses,
        fish=fish,
        prompts=_frame_prompts(labels, fish),
    )


def encode_mp4(frames: np.ndarray, path: Path, *, fps: int = REEF_FPS, crf: int = 16) -> Path:
    """Encode RGB frames as an H.264 (else MPEG-4 part 2) yuv420p mp4 with PyAV.

    Parameters
    ----------
    frames : ndarray (t, y, x, 3) uint8
        Frames; ``y`` and ``x`` must be even (yuv420p).
    path : Path
        Destination ``.mp4``.
    fps : int, optional
        Frame rate written into the file.
    crf : int, optional
        x264 constant rate factor (lower is better quality); ignored for MPEG-4.

    Returns
    -------
    Path
        ``path``.
    """
    import av
    from av.video.stream import VideoStream

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise InputError(f"{path}: expected (t, y, x, 3) uint8 frames, got {frames.shape}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise InputError(f"{path}: yuv420p needs even frame sizes, got {frames.shape[1:3]}")
    available = av.codecs_available
    codec = "libx264" if "libx264" in available else "mpeg4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps, 1))
        assert isinstance(stream, VideoStream)  # a video codec gives a video stream
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "slow", "threads": "1"}
        else:
            stream.bit_rate = 4_000_000
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)


def write_reef(out: Path, *, clip: ReefClip | None = None) -> dict[str, Path]:
    """Render the clip and write ``reef.mp4``, ``reef_labels.npz`` and ``reef_prompts.json``.

    Parameters
    ----------
    out : Path
        Output folder; created when missing.
    clip : ReefClip, optional
        An already rendered clip (default: :func:`render_reef`).

    Returns
    -------
    dict
        ``{"video": ..., "labels": ..., "prompts": ...}`` paths.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: output path exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    clip = render_reef() if clip is None else clip
    video = encode_mp4(clip.frames, out / MP4_NAME, fps=clip.fps)
    labels = out / LABELS_NAME
    np.savez_compressed(labels, labels=clip.labels)
    prompts = write_prompts_json(out / PROMPTS_NAME, clip.objects, clip.prompts)
    return {"video": video, "labels": labels, "prompts": prompts}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m napari_sam2v.samples.reef --out DIR``."""
    parser = argparse.ArgumentParser(
        prog="python -m napari_sam2v.samples.reef",
        description="Render the synthetic reef clip, its ground truth and its prompts.",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args(argv)
    try:
        paths = write_reef(args.out)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for kind, path in paths.items():
        print(f"{kind}: {path} ({path.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
