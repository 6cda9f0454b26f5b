"""The ``napari-sam2v`` command line (Qt-free except the ``gui`` command).

Run ``napari-sam2v --help``, or call :func:`napari_sam2v.cli.main.main` with a list
of arguments.
"""

from __future__ import annotations

__all__: list[str] = []
