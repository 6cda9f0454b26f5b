"""The object list of the tracker dock: add, rename, recolour, delete, pick the current one."""

from __future__ import annotations

from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import (
    QColorDialog,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_sam2v.types import ObjectInfo

__all__ = ["ObjectsPanel"]


def _swatch(color: str) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class ObjectsPanel(QWidget):
    """A list of tracked objects; the selected one receives the clicks.

    Double-click a name to rename it. The panel only emits requests; the tracker
    widget applies them to the session and calls :meth:`set_objects` back.
    """

    add_requested = Signal()
    rename_requested = Signal(int, str)
    recolor_requested = Signal(int, str)
    delete_requested = Signal(int)
    current_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setToolTip(
            "Objects to track. The selected object receives the clicks.\n"
            "Double-click a name to rename it."
        )
        self.list.setMaximumHeight(120)
        self.add_button = QPushButton("Add")
        self.add_button.setToolTip("Add a new object and make it current")
        self.color_button = QPushButton("Colour…")
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip(
            "Delete the selected object, its prompts and its pixels in the result store"
        )
        buttons = QHBoxLayout()
        for button in (self.add_button, self.color_button, self.delete_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        self._updating = False
        self.add_button.clicked.connect(self.add_requested)
        self.color_button.clicked.connect(self._pick_color)
        self.delete_button.clicked.connect(self._delete)
        self.list.itemChanged.connect(self._renamed)
        self.list.currentItemChanged.connect(self._current)

    def current_id(self) -> int | None:
        """Id of the selected object, if any."""
        item = self.list.currentItem()
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def set_objects(self, objects: list[ObjectInfo], current: int | None) -> None:
        """Show ``objects`` and select ``current`` without emitting requests."""
        self._updating = True
        try:
            self.list.clear()
            for obj in objects:
                item = QListWidgetItem(_swatch(obj.color), obj.name)
                item.setData(Qt.ItemDataRole.UserRole, obj.id)
                item.setToolTip(f"id {obj.id} (the label value), colour {obj.color}")
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                self.list.addItem(item)
                if obj.id == current:
                    self.list.setCurrentItem(item)
        finally:
            self._updating = False
        self.color_button.setEnabled(bool(objects))
        self.delete_button.setEnabled(bool(objects))

    def _renamed(self, item: QListWidgetItem) -> None:
        if not self._updating:
            self.rename_requested.emit(int(item.data(Qt.ItemDataRole.UserRole)), item.text())

    def _current(self, item: QListWidgetItem | None, _previous: object = None) -> None:
        if not self._updating and item is not None:
            self.current_changed.emit(int(item.data(Qt.ItemDataRole.UserRole)))

    def _pick_color(self) -> None:
        oid = self.current_id()
        if oid is None:
            return
        color = QColorDialog.getColor(parent=self, title=f"Colour of object {oid}")
        if color.isValid():
            self.recolor_requested.emit(oid, color.name())

    def _delete(self) -> None:
        oid = self.current_id()
        if oid is None:
            return
        answer = QMessageBox.question(
            self,
            "Delete object",
            f"Delete object {oid}, its prompts and its pixels on every frame of the result "
            "store? This cannot be undone.",
            # PyQt5's stubs type this flag combination as int; Qt accepts it
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,  # type: ignore[arg-type]
            QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_requested.emit(oid)
