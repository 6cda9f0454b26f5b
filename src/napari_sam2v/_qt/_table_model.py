"""A read-only Qt table model over a pandas DataFrame, sortable through a proxy."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from qtpy.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt

__all__ = ["DataFrameModel", "sortable"]


class DataFrameModel(QAbstractTableModel):
    """Show a DataFrame; numbers sort numerically (the sort role holds raw values).

    Parameters
    ----------
    frame : DataFrame, optional
        The table to show.
    units : dict of str to str, optional
        Column units shown in the header tooltips.
    """

    def __init__(
        self, frame: pd.DataFrame | None = None, units: dict[str, str] | None = None
    ) -> None:
        super().__init__()
        self.frame = pd.DataFrame() if frame is None else frame.reset_index(drop=True)
        self.units = dict(units or {})

    def set_frame(self, frame: pd.DataFrame, units: dict[str, str] | None = None) -> None:
        """Replace the table."""
        self.beginResetModel()
        self.frame = frame.reset_index(drop=True)
        self.units = dict(units or {})
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.frame)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.frame.columns)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        value = self.frame.iat[index.row(), index.column()]
        if role == Qt.ItemDataRole.UserRole:
            if isinstance(value, (float, np.floating)) and np.isnan(value):
                return float("-inf")
            return value.item() if isinstance(value, np.generic) else value
        if role == Qt.ItemDataRole.DisplayRole:
            if isinstance(value, (float, np.floating)):
                return "" if np.isnan(value) else f"{value:.4g}"
            return str(value)
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(self.frame.columns):
            name = str(self.frame.columns[section])
            unit = self.units.get(name, "")
            if role == Qt.ItemDataRole.DisplayRole:
                return f"{name} [{unit}]" if unit else name
            if role == Qt.ItemDataRole.ToolTipRole:
                return f"{name} ({unit})" if unit else name
        if orientation == Qt.Orientation.Vertical and role == Qt.ItemDataRole.DisplayRole:
            return str(section)
        return None


def sortable(model: DataFrameModel) -> QSortFilterProxyModel:
    """A proxy that sorts ``model`` by raw values (numbers as numbers)."""
    proxy = QSortFilterProxyModel()
    proxy.setSourceModel(model)
    proxy.setSortRole(Qt.ItemDataRole.UserRole)
    return proxy
