"""Calibration of the Results dock: pixel size, unit, frame interval, time unit.

Built from magicgui widgets (napari's own form toolkit). The units are picked from the
ones napari-sam2v knows the size of (:data:`~napari_sam2v.types.LENGTH_UNITS`,
:data:`~napari_sam2v.types.TIME_UNITS`), so a typo cannot reach the OME-Zarr axes; a
store recorded in another unit keeps it as one more choice.
"""

from __future__ import annotations

from collections.abc import Mapping

from magicgui.widgets import ComboBox, Container, FloatSpinBox, PushButton
from qtpy.QtWidgets import QGroupBox, QVBoxLayout, QWidget

from napari_sam2v.errors import InputError
from napari_sam2v.types import LENGTH_UNITS, TIME_UNITS, Calibration

__all__ = ["CalibrationForm"]

#: "No physical unit": lengths in pixels, times in frames.
_NO_LENGTH, _NO_TIME = "px", "frame"


def _spin(label: str, tooltip: str) -> FloatSpinBox:
    spin = FloatSpinBox(label=label, min=0.0, max=1e9, step=0.01, tooltip=tooltip)
    spin.native.setDecimals(6)
    spin.native.setSpecialValueText("uncalibrated")
    return spin


def _units(label: str, none: str, known: Mapping[str, tuple[str, float]], tooltip: str) -> ComboBox:
    """A unit picker: ``none``, then the abbreviation of each known unit."""
    return ComboBox(label=label, choices=[none, *known], value=none, tooltip=tooltip)


class CalibrationForm(QGroupBox):
    """Editable calibration, prefilled from the store's metadata.

    A value of 0 ("uncalibrated") means lengths in pixels or times in frames. The
    owner connects :attr:`save_button` (its ``changed`` event is the click) to write
    the calibration into the store.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Calibration", parent)
        self.pixel_size = _spin("Pixel size", "Edge length of one pixel (0 = lengths in pixels)")
        self.unit = _units("Unit", _NO_LENGTH, LENGTH_UNITS, "Length unit of the pixel size")
        self.frame_interval = _spin("Frame interval", "Time between frames (0 = times in frames)")
        self.time_unit = _units(
            "Time unit", _NO_TIME, TIME_UNITS, "Time unit of the frame interval"
        )
        self.save_button = PushButton(
            text="Save to result store",
            tooltip="Record this calibration in the result store (its OME-Zarr scale and\n"
            "provenance), so napari, Fiji, 'measure' and exports use it from now on",
        )
        self.form = Container(
            widgets=[self.pixel_size, self.unit, self.frame_interval, self.time_unit]
        )
        self.form.append(self.save_button)
        self.form.margins = (0, 0, 0, 0)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)

    def set_calibration(self, calibration: Calibration) -> None:
        """Show ``calibration`` (an unknown unit name becomes one more choice)."""
        for combo, unit in ((self.unit, calibration.unit), (self.time_unit, calibration.time_unit)):
            if unit not in combo.choices:
                combo.choices = [*combo.choices, unit]
            combo.value = unit
        self.pixel_size.value = calibration.pixel_size or 0.0
        self.frame_interval.value = calibration.frame_interval or 0.0

    def calibration(self) -> Calibration:
        """The calibration as edited.

        Raises
        ------
        InputError
            If a unit is missing for a calibrated value.
        """
        pixel = self.pixel_size.value or None
        interval = self.frame_interval.value or None
        unit, time_unit = self.unit.value, self.time_unit.value
        if pixel is not None and unit == _NO_LENGTH:
            raise InputError("calibration: give the unit of the pixel size (e.g. um)")
        if interval is not None and time_unit == _NO_TIME:
            raise InputError("calibration: give the unit of the frame interval (e.g. s)")
        return Calibration(
            pixel_size=pixel,
            unit=unit,
            frame_interval=interval,
            time_unit=time_unit,
        )
