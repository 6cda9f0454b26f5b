"""Devices, CPU threads and the tensor conversions around the SAM 2 model.

No transformers processor is used (they import torchvision): frames are resized
and normalised here, prompt coordinates are scaled to the model's square input,
and low-resolution mask logits are brought back to the original frame size.
Everything is float32 (MPS has no float64).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from napari_sam2v.errors import EngineError
from napari_sam2v.prompts import Prompt

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "cpu_threads",
    "mask_to_model",
    "points_to_model",
    "preprocess_frame",
    "select_device",
    "upsample_logits",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def select_device(device: str) -> torch.device:
    """Resolve ``"auto"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"cpu"``.

    ``"auto"`` picks CUDA, then Apple MPS, then the CPU.

    Raises
    ------
    EngineError
        If the requested device is unknown or not available.
    """
    name = str(device).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise EngineError(
            f"unknown device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EngineError("device 'cuda' requested but no CUDA GPU is available; use 'auto'")
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise EngineError("device 'mps' requested but Apple MPS is not available; use 'auto'")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise EngineError(f"unsupported device {device!r}: use 'auto', 'cpu', 'cuda' or 'mps'")
    return dev


@contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``n`` intra-op CPU threads, restoring the setting after.

    ``None`` leaves torch's setting unchanged.
    """
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def preprocess_frame(rgb: np.ndarray, image_size: int, device: torch.device) -> torch.Tensor:
    """Turn a float RGB frame in ``[0, 1]`` into the model's input tensor.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3)
        float32 RGB in ``[0, 1]`` (see :meth:`FrameNormalizer.rgb_frame`).
    image_size : int
        Side of the model's square input (1024 for SAM 2).
    device : torch.device
        Target device.

    Returns
    -------
    torch.Tensor of shape (3, image_size, image_size)
        Resized (bilinear, antialiased) and normalised with ImageNet mean and std.
    """
    tensor = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).to(device)
    tensor = tensor.permute(2, 0, 1).unsqueeze(0)
    tensor = F.interpolate(
        tensor, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True
    )
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    return ((tensor.clamp(0.0, 1.0) - mean) / std)[0]


def points_to_model(
    prompt: Prompt, frame_shape: tuple[int, int], image_size: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """Convert a prompt's points and box into the model's point inputs.

    Coordinates are scaled from the original ``(H, W)`` frame to the square model
    input; a box becomes two corner points with labels 2 and 3, placed first.

    Returns
    -------
    dict
        ``point_coords`` ``(1, 1, N, 2)`` float32 and ``point_labels`` ``(1, 1, N)`` int32.
    """
    height, width = frame_shape
    scale = np.array([image_size / width, image_size / height], dtype=np.float32)
    coords: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    if prompt.box is not None:
        coords.append(prompt.box.reshape(2, 2).astype(np.float32) * scale)
        labels.append(np.array([2, 3], dtype=np.int32))
    if prompt.points is not None and len(prompt.points):
        coords.append(prompt.points.astype(np.float32) * scale)
        labels.append(np.asarray(prompt.labels, dtype=np.int32))
    point_coords = torch.from_numpy(np.concatenate(coords, axis=0)).to(device)
    point_labels = torch.from_numpy(np.concatenate(labels, axis=0)).to(device)
    return {"point_coords": point_coords[None, None], "point_labels": point_labels[None, None]}


def mask_to_model(mask: np.ndarray, image_size: int, device: torch.device) -> torch.Tensor:
    """Resize a boolean mask prompt to the model input size (``(1, 1, S, S)`` float32 0/1)."""
    tensor = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)).to(device)[None, None]
    tensor = F.interpolate(
        tensor, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True
    )
    return (tensor >= 0.5).to(torch.float32)


def upsample_logits(
    logits: torch.Tensor, image_size: int, frame_shape: tuple[int, int]
) -> np.ndarray:
    """Low-resolution mask logits ``(N, 1, h, w)`` -> boolean masks ``(N, H, W)``.

    The logits are resized to the model input and then to the original frame
    (bilinear), and thresholded at 0, as SAM 2's own post-processing does.
    """
    logits = logits.to(torch.float32)
    logits = F.interpolate(
        logits, size=(image_size, image_size), mode="bilinear", align_corners=False
    )
    logits = F.interpolate(logits, size=frame_shape, mode="bilinear", align_corners=False)
    return (logits[:, 0] > 0).cpu().numpy()
