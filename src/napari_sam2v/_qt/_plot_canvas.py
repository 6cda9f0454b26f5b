"""A matplotlib canvas embedded in Qt that shows figures made by ``analysis``."""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

__all__ = ["PlotCanvas"]


class PlotCanvas(QWidget):
    """Holds one matplotlib :class:`~matplotlib.figure.Figure` at a time."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self.canvas: FigureCanvasQTAgg | None = None
        self.clear()
        self.setMinimumHeight(240)

    def clear(self) -> None:
        """Show an empty figure."""
        self.set_figure(Figure(figsize=(4, 3)))

    @property
    def figure(self) -> Figure:
        """The figure on show."""
        assert self.canvas is not None  # __init__ shows an empty figure
        return self.canvas.figure

    def set_figure(self, figure: Figure) -> None:
        """Show ``figure`` (the previous canvas is discarded)."""
        canvas = FigureCanvasQTAgg(figure)
        canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        if self.canvas is not None:
            self._layout.removeWidget(self.canvas)
            self.canvas.deleteLater()
        self._layout.addWidget(canvas)
        self.canvas = canvas
        canvas.draw_idle()
