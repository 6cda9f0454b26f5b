"""The Results dock's calibration form (magicgui widgets)."""

from __future__ import annotations

import pytest

from napari_sam2v.errors import InputError
from napari_sam2v.types import LENGTH_UNITS, TIME_UNITS, Calibration

pytestmark = pytest.mark.gui


def test_units_come_from_the_known_tables_and_round_trip(qtbot) -> None:
    from napari_sam2v._qt._calibration_form import CalibrationForm

    form = CalibrationForm()
    qtbot.addWidget(form)
    # one abbreviation per unit: no µm beside um, no sec or hr beside s and h
    assert list(form.unit.choices) == ["px", "nm", "um", "mm", "cm", "m", "km"]
    assert list(form.time_unit.choices) == ["frame", "ms", "s", "min", "h", "d"]
    assert set(form.unit.choices[1:]) <= set(LENGTH_UNITS)
    assert set(form.time_unit.choices[1:]) <= set(TIME_UNITS)
    assert form.calibration() == Calibration()  # uncalibrated until told otherwise
    cal = Calibration(pixel_size=0.087, unit="um", frame_interval=0.083333, time_unit="s")
    form.set_calibration(cal)
    assert form.calibration() == cal
    assert form.pixel_size.native.text() == "0.087000"  # six decimals, not two
    form.pixel_size.value = 0
    assert form.pixel_size.native.text() == "uncalibrated"
    form.set_calibration(Calibration(pixel_size=1.0, unit="µm"))  # another spelling
    assert form.calibration().unit == "um"
    assert list(form.unit.choices) == ["px", "nm", "um", "mm", "cm", "m", "km"]  # no new choice


def test_a_stored_unit_outside_the_tables_is_kept(qtbot) -> None:
    from napari_sam2v._qt._calibration_form import CalibrationForm

    form = CalibrationForm()
    qtbot.addWidget(form)
    form.set_calibration(Calibration(pixel_size=2.0, unit="in", frame_interval=1.0, time_unit="wk"))
    assert form.calibration() == Calibration(2.0, "in", 1.0, "wk")
    form.unit.value = "px"
    with pytest.raises(InputError, match="give the unit of the pixel size"):
        form.calibration()
