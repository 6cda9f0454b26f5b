"""``napari-sam2v`` with the classic engine held to a fixed pace per frame.

The crash and cancel tests start this as a subprocess instead of the console
script: it is the same ``napari_sam2v.cli.main.main`` entry point, with
``ClassicEngine.propagate`` sleeping ``SAM2V_TEST_PACE_S`` seconds after each frame
so that a signal sent at a random moment lands mid-run.

Usage: ``python -m tests.reliability.paced_cli track VIDEO --prompts P --out R ...``
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from napari_sam2v.cli.main import main
from napari_sam2v.engines.classic.engine import ClassicEngine


def paced(propagate: Callable[..., Iterator[Any]], delay: float) -> Callable[..., Iterator[Any]]:
    """Wrap an engine's ``propagate`` so each frame takes at least ``delay`` seconds."""

    def slow(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for result in propagate(self, *args, **kwargs):
            time.sleep(delay)
            yield result

    return slow


if __name__ == "__main__":
    pace = float(os.environ.get("SAM2V_TEST_PACE_S", "0"))
    if pace > 0:
        ClassicEngine.propagate = paced(ClassicEngine.propagate, pace)  # type: ignore[method-assign]
    sys.exit(main(sys.argv[1:]))
