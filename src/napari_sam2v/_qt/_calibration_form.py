"""Calibration of the Results dock: pixel size, unit, frame interval, time unit."""

from __future__ import annotations

from qtpy.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QPushButton,
    QWidget,
)

from napari_sam2v.errors import InputError
from napari_sam2v.types import Calibration

__all__ = ["CalibrationForm"]


def _spin(tooltip: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setDecimals(6)
    spin.setRange(0.0, 1e9)
    spin.setSpecialValueText("uncalibrated")
    spin.setToolTip(tooltip)
    return spin


class CalibrationForm(QGroupBox):
    """Editable calibration, prefilled from the store's metadata.

    A value of 0 ("uncalibrated") means lengths in pixels or times in frames. The
    owner connects :attr:`save_button` to write the calibration into the store.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Calibration", parent)
        self.pixel_size = _spin("Edge length of one pixel (0 = lengths in pixels)")
        self.unit = QLineEdit("px")
        self.unit.setToolTip("Length unit, e.g. um, mm, cm")
        self.frame_interval = _spin("Time between frames (0 = times in frames)")
        self.time_unit = QLineEdit("frame")
        self.time_unit.setToolTip("Time unit, e.g. s, min, h")
        form = QFormLayout(self)
        form.addRow("Pixel size", self.pixel_size)
        form.addRow("Unit", self.unit)
        form.addRow("Frame interval", self.frame_interval)
        form.addRow("Time unit", self.time_unit)
        self.save_button = QPushButton("Save to result store")
        self.save_button.setToolTip(
            "Record this calibration in the result store (its OME-Zarr scale and\n"
            "provenance), so napari, Fiji, 'measure' and exports use it from now on"
        )
        form.addRow(self.save_button)

    def set_calibration(self, calibration: Calibration) -> None:
        """Show ``calibration``."""
        self.pixel_size.setValue(calibration.pixel_size or 0.0)
        self.unit.setText(calibration.unit)
        self.frame_interval.setValue(calibration.frame_interval or 0.0)
        self.time_unit.setText(calibration.time_unit)

    def calibration(self) -> Calibration:
        """The calibration as edited.

        Raises
        ------
        InputError
            If a unit is missing for a calibrated value.
        """
        pixel = self.pixel_size.value() or None
        interval = self.frame_interval.value() or None
        unit, time_unit = self.unit.text().strip(), self.time_unit.text().strip()
        if pixel is not None and unit in ("", "px"):
            raise InputError("calibration: give the unit of the pixel size (e.g. um)")
        if interval is not None and time_unit in ("", "frame"):
            raise InputError("calibration: give the unit of the frame interval (e.g. s)")
        return Calibration(
            pixel_size=pixel,
            unit=unit or "px",
            frame_interval=interval,
            time_unit=time_unit or "frame",
        )
