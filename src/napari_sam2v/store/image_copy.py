"""The store's copy of the input frames: written once, when the store is created.

Microscopy inputs and arrays are copied into the store (see
:func:`~napari_sam2v.store.pipeline.track`), so it can be reopened without them. The
copy is the store's OME-Zarr image at the root (``0``), ``(t, y, x)`` or
``(t, c, y, x)``, scaled like the labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_sam2v.store import layout
from napari_sam2v.types import Calibration

__all__ = ["write_image_copy"]


def write_image_copy(
    root: Any, image: Any, calibration: Calibration, fmt: Any, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Write ``image`` (``(t, y, x)`` or ``(t, y, x, c)``) as the root's NGFF image ``0``.

    Parameters
    ----------
    root : zarr.Group
        The store's root group (being created).
    image : array-like
        The frames, read one at a time.
    calibration : Calibration
        Gives the image's axes, units and scale.
    fmt : ome_zarr.format.Format
        The store's NGFF format.
    kwargs : dict
        Array options of the store's zarr format (compressors, ...).

    Returns
    -------
    dict
        Its provenance entry: ``path``, ``axes`` (``"tyx"`` or ``"tcyx"``) and the
        ``shape`` written, in those axes.
    """
    from ome_zarr.writer import write_multiscales_metadata

    shape = tuple(int(s) for s in image.shape)
    multichannel = len(shape) == 4
    zshape = (shape[0], shape[3], shape[1], shape[2]) if multichannel else shape
    axes = "tcyx" if multichannel else "tyx"
    arr = root.create_array(
        "0",
        shape=zshape,
        chunks=layout.chunk_shape(zshape[1:]),
        dtype=image.dtype,
        **kwargs,
        **layout.dimension_names(int(root.metadata.zarr_format), list(axes)),
    )
    for t in range(shape[0]):
        frame = np.asarray(image[t])
        arr[t] = np.moveaxis(frame, -1, 0) if multichannel else frame
    write_multiscales_metadata(
        root,
        [
            {
                "path": "0",
                "coordinateTransformations": [
                    {
                        "type": "scale",
                        "scale": layout.ngff_scale(calibration, channel=multichannel),
                    }
                ],
            }
        ],
        fmt=fmt,
        axes=layout.ngff_axes(calibration, channel=multichannel),
        name="image",
    )
    return {"path": "0", "axes": axes, "shape": list(zshape)}
