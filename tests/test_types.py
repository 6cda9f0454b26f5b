"""Tests for the shared value types (ObjectInfo, Calibration)."""

from __future__ import annotations

import math

import pytest

from napari_sam2v.errors import InputError
from napari_sam2v.types import Calibration, ObjectInfo, convert_unit, default_color, udunits_name


def test_object_info_defaults_and_validation() -> None:
    obj = ObjectInfo(3)
    assert obj.name == "object 3"
    assert obj.color == default_color(3)
    assert obj.renamed("parrotfish").name == "parrotfish"
    assert ObjectInfo(1, "a", "#FF8800").color == "#FF8800"
    for bad in (0, -2, True, 1.5, "1"):
        with pytest.raises(ValueError, match="positive integer"):
            ObjectInfo(bad)  # type: ignore[arg-type]
    for color in ("red", "#12345", "#gg0000", "#1234567"):
        with pytest.raises(ValueError, match="colour"):
            ObjectInfo(1, "x", color)


def test_palette_cycles() -> None:
    assert default_color(1) == default_color(9)
    assert default_color(1) != default_color(2)


def test_calibration_units_and_roundtrip() -> None:
    cal = Calibration(pixel_size=0.87, unit="um", frame_interval=10.2, time_unit="min")
    assert cal.spatial_scale == 0.87
    assert cal.time_scale == 10.2
    assert cal.is_spatially_calibrated
    assert Calibration.from_dict(cal.to_dict()) == cal


def test_uncalibrated_reports_pixels_and_frames() -> None:
    cal = Calibration(unit="um", time_unit="s")
    assert (cal.unit, cal.time_unit) == ("px", "frame")
    assert cal.spatial_scale == 1.0 and cal.time_scale == 1.0
    assert not cal.is_spatially_calibrated


@pytest.mark.parametrize("value", [0, -1.0, math.nan, math.inf])
def test_calibration_rejects_nonpositive(value: float) -> None:
    with pytest.raises(ValueError, match="positive finite"):
        Calibration(pixel_size=value, unit="um")
    with pytest.raises(ValueError, match="positive finite"):
        Calibration(frame_interval=value, time_unit="s")


def test_interval_unit_defaults_to_seconds_only_with_an_interval() -> None:
    from napari_sam2v.types import DEFAULT_TIME_UNIT, interval_unit

    assert interval_unit(2.0, None) == DEFAULT_TIME_UNIT == "s"
    assert interval_unit(2.0, "min") == "min"
    assert interval_unit(None, None) is None  # keep the store's calibration
    assert interval_unit(None, "min") == "min"  # the library then refuses a lone unit


def test_overrides_lay_a_calibration_over_another_and_describe_reads_well() -> None:
    full = Calibration(pixel_size=0.65, unit="um", frame_interval=10.0, time_unit="min")
    assert full.overrides() == {
        "pixel_size": 0.65,
        "unit": "um",
        "frame_interval": 10.0,
        "time_unit": "min",
    }
    assert Calibration().overridden(**full.overrides()) == full
    # the uncalibrated parts change nothing (no lone unit is passed on)
    spatial = Calibration(pixel_size=2.0, unit="mm")
    assert spatial.overrides()["time_unit"] is None
    assert full.overridden(**spatial.overrides()) == Calibration(
        pixel_size=2.0, unit="mm", frame_interval=10.0, time_unit="min"
    )
    assert Calibration().overrides() == dict.fromkeys(full.overrides())
    assert full.describe() == "0.65 um/pixel, 10 min/frame"
    assert Calibration().describe() == "lengths in pixels, times in frames"
    assert full.describe_interval() == "10 min/frame"
    assert Calibration().describe_interval() == "times in frames"


def test_given_calibration_reads_flags_and_manifest_rows_alike() -> None:
    from types import SimpleNamespace

    from napari_sam2v.types import any_given, given_calibration

    flags = SimpleNamespace(pixel_size=0.5, unit="um", frame_interval=2.0, time_unit=None)
    given = given_calibration(flags)
    assert given == {"pixel_size": 0.5, "unit": "um", "frame_interval": 2.0, "time_unit": "s"}
    assert any_given(given)
    assert Calibration().overridden(**given) == Calibration(0.5, "um", 2.0, "s")
    nothing = given_calibration(
        SimpleNamespace(pixel_size=None, unit=None, frame_interval=None, time_unit=None)
    )
    assert nothing == dict.fromkeys(given) and not any_given(nothing)
    assert any_given({"pixel_size": None, "unit": "um"})  # a lone unit counts as given


def test_a_unit_alone_is_not_a_silent_relabel() -> None:
    """--unit mm over 0.87 um would be a thousandfold error: refused, with the value in mm."""
    cal = Calibration(pixel_size=0.87, unit="um", frame_interval=600.0, time_unit="s")
    with pytest.raises(
        InputError, match=r"relabel 0\.87 um as 0\.87 mm; .*\(0\.87 um is 0\.00087 mm\)"
    ):
        cal.overridden(unit="mm")
    with pytest.raises(
        InputError, match=r"give the frame interval in min as well \(600 s is 10 min\)"
    ):
        cal.overridden(time_unit="min")
    with pytest.raises(InputError, match=r"give the pixel size in furlong as well$"):
        cal.overridden(unit="furlong")  # no known size: no converted value offered
    assert cal.overridden(unit="µm") == cal  # another spelling of the stored unit
    assert cal.overridden(unit="micron", time_unit="seconds") == cal
    assert cal.overridden(unit="um", time_unit="s") == cal  # the stored units
    assert cal.overridden(pixel_size=0.87, unit="mm").unit == "mm"  # a relabel, as asked
    assert cal.overridden(frame_interval=10, time_unit="min").time_scale == 10.0


def test_unit_tables() -> None:
    assert udunits_name("um") == "micrometer" and udunits_name("min") == "minute"
    assert udunits_name("furlong") is None
    assert convert_unit(2.5, "cm", "mm") == pytest.approx(25.0)
    assert convert_unit(1.0, "d", "h") == pytest.approx(24.0)
    assert convert_unit(1.0, "mm", "s") is None
    assert convert_unit(1.0, "px", "um") is None
    assert convert_unit(1500.0, "microns", "Millimetres") == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("given", "unit", "time_given", "time_unit"),
    [
        ("micron", "um", "sec", "s"),
        ("µm", "um", "Minutes", "min"),  # the micro sign (OME-XML)
        ("μm", "um", "hrs", "h"),  # the Greek mu (many keyboards)
        ("\\u00B5m", "um", "days", "d"),  # ImageJ's escaped micro sign, as text
        (" Micrometre ", "um", "millisecond", "ms"),
        ("furlong", "furlong", "fortnight", "fortnight"),  # unknown: kept as given
    ],
)
def test_calibration_keeps_one_spelling_per_unit(given, unit, time_given, time_unit) -> None:
    """Every spelling of a unit becomes its abbreviation, so it converts and reaches OME-Zarr."""
    cal = Calibration(pixel_size=0.5, unit=given, frame_interval=2.0, time_unit=time_given)
    assert (cal.unit, cal.time_unit) == (unit, time_unit)
    assert cal == Calibration(pixel_size=0.5, unit=unit, frame_interval=2.0, time_unit=time_unit)
    assert Calibration.from_dict(cal.to_dict()) == cal
    if unit == "um":
        assert udunits_name(given) == "micrometer"
        assert convert_unit(1.0, given, "nm") == pytest.approx(1000.0)


def test_the_first_object_colours_stand_apart_from_water_fish_and_grey_cells() -> None:
    """A mask is drawn over its object: the first colours must not look like the video.

    The reef sample's fish (orange, yellow, blue) and water, and the cells sample's
    grey as napari shows it (contrast limits at the data range), are what the first
    objects of underwater or phase-contrast video look like.
    """
    import numpy as np
    from skimage.color import deltaE_ciede2000, rgb2lab

    from napari_sam2v.samples import load_cells, load_reef

    reef = load_reef()
    frame, labels = np.asarray(reef.frames[0], float), np.asarray(reef.labels[0])
    seen = [frame[labels == i].mean(axis=0) for i in (1, 2, 3, 0)]  # three fish, water
    cells = np.asarray(load_cells().frames[0], float)
    grey = 255 * (np.median(cells) - cells.min()) / (cells.max() - cells.min())
    seen.append(np.full(3, grey))

    def lab(rgb) -> np.ndarray:
        return rgb2lab(np.asarray(rgb, float)[None, None] / 255)[0, 0]

    def distance(color: str) -> float:
        rgb = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
        return min(float(deltaE_ciede2000(lab(rgb), lab(s))) for s in seen)

    distances = [distance(default_color(i)) for i in range(1, 9)]
    assert distances[0] == max(distances)  # object 1: the colour farthest from all
    assert min(distances[:3]) > 17.5  # orange (17.2 from the orange fish) is not among them
