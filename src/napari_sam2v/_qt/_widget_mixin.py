"""The base of the tracker dock's mixins: QWidget for a type checker, ``object`` at run time.

:class:`~napari_sam2v._qt.tracker_widget.TrackerWidget` is put together from mixins
that come before ``QWidget`` in its bases and call QWidget methods (``parent``,
``showEvent``, ...). Deriving them from ``QWidget`` at run time would give the widget
that class twice over; this base lets a type checker see those methods all the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["WidgetMixin"]

if TYPE_CHECKING:  # pragma: no cover
    from qtpy.QtWidgets import QWidget as WidgetMixin
else:
    WidgetMixin = object
