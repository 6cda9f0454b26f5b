"""The plugin's docks share their place in the viewer: a second one opens as a tab.

napari stacks a dock added to an area that holds one already below it, and gives the
new one little more than its minimum height: on a 950 px window the tracker opened
below the Results dock (or the other way round) was about 130 px tall, its form
unusable until the splitter was dragged. As tabs, each dock has the area's full height.
"""

from __future__ import annotations

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QDockWidget, QMainWindow, QWidget

__all__ = ["tab_beside_plugin_docks"]

#: Module prefix of the widgets that share a tab group (the tracker and Results docks).
_PLUGIN_WIDGETS = "napari_sam2v._qt."


def tab_beside_plugin_docks(widget: QWidget) -> None:
    """Once, after ``widget`` was first docked: tab its dock with another plugin dock.

    Call it from the widget's ``showEvent``. It acts after napari has finished adding
    the dock (on the next turn of the event loop), only the first time, so a layout
    the user arranged later is left alone. The dock opened last is raised.

    Parameters
    ----------
    widget : QWidget
        A dock widget of this plugin (the tracker or the Results dock).
    """
    if getattr(widget, "_tab_checked", False):
        return
    widget._tab_checked = True
    QTimer.singleShot(0, lambda: _tab(widget))


def _tab(widget: QWidget) -> None:
    try:
        dock = widget.parentWidget()
    except RuntimeError:  # deleted meanwhile (its viewer closed)
        return
    if not isinstance(dock, QDockWidget) or dock.isFloating():
        return
    window = dock.parentWidget()
    if not isinstance(window, QMainWindow):
        return
    area = window.dockWidgetArea(dock)
    for other in window.findChildren(QDockWidget):
        inner = other.widget()
        if (
            other is not dock
            and other.isVisible()
            and not other.isFloating()
            and window.dockWidgetArea(other) == area
            and type(inner).__module__.startswith(_PLUGIN_WIDGETS)
        ):
            window.tabifyDockWidget(other, dock)
            dock.show()
            dock.raise_()
            return
