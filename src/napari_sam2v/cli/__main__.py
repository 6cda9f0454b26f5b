"""``python -m napari_sam2v.cli``: the same as the ``napari-sam2v`` command."""

from __future__ import annotations

import sys

from napari_sam2v.cli.main import main

sys.exit(main())
